#include "backends/thread/thread_backend.h"

namespace flexsc::detail {

int ThreadBackend::create(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error) {
  std::unique_ptr<SyscallThreads> threads;
  if (int rc = SyscallThreads::create(cfg, &threads, error); rc < 0) return rc;
  out->reset(new ThreadBackend(std::move(threads)));
  return 0;
}

}  // namespace flexsc::detail
