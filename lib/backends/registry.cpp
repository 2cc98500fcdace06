#include "backends/registry.h"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "backends/shim/shim_backend.h"
#include "backends/thread/thread_backend.h"
#ifdef FLEXSC_HAVE_IO_URING
#include "backends/uring/uring_backend.h"
#endif

namespace flexsc::detail {
namespace {

struct Kind {
  const char* name;
  BackendFactory create;  // nullptr: not in this build
};

#ifdef FLEXSC_HAVE_IO_URING
int create_uring(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error) {
  return UringBackend::create(cfg, false, out, error);
}
int create_uring_sqpoll(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error) {
  return UringBackend::create(cfg, true, out, error);
}
constexpr BackendFactory kUring = create_uring, kUringSqpoll = create_uring_sqpoll;
#else
constexpr BackendFactory kUring = nullptr, kUringSqpoll = nullptr;
#endif

constexpr Kind kBuiltIn[] = {
    {"thread", ThreadBackend::create},
    {"uring", kUring},
    {"uring-sqpoll", kUringSqpoll},
    {"shim", ShimBackend::create},
};

// Constant-initialized: a test registers from a static constructor.
constexpr unsigned kMaxAdded = 4;
std::mutex g_added_mutex;
Kind g_added[kMaxAdded];
unsigned g_added_count = 0;

const Kind* find(const std::string& name) {
  for (const Kind& k : kBuiltIn)
    if (name == k.name) return &k;
  std::lock_guard lock(g_added_mutex);
  for (unsigned i = 0; i < g_added_count; ++i)
    if (name == g_added[i].name) return &g_added[i];
  return nullptr;
}

#ifdef FLEXSC_HAVE_IO_URING
// SQPOLL when syscall cores are dedicated: a kernel submission thread on
// a shared core would compete with the user.
bool auto_wants_sqpoll(const Config& cfg) {
  if (cfg.cores_forced) return !cfg.syscall_cpus.empty();
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 1;
}
#endif

// The kernel shim where it is loaded and takes this process; then io_uring
// where it works; then syscall threads.
int create_auto(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error) {
  std::string ignored;
  if (ShimBackend::create(cfg, out, &ignored) == 0) return 0;
#ifdef FLEXSC_HAVE_IO_URING
  if (auto_wants_sqpoll(cfg) && create_uring_sqpoll(cfg, out, error) == 0) return 0;
  if (create_uring(cfg, out, error) == 0) return 0;
#endif
  return ThreadBackend::create(cfg, out, error);
}

}  // namespace

bool register_backend(const char* name, BackendFactory create) {
  if (!create || find(name) || std::strcmp(name, "auto") == 0) return false;
  std::lock_guard lock(g_added_mutex);
  if (g_added_count == kMaxAdded) return false;
  g_added[g_added_count++] = {name, create};
  return true;
}

int create_backend(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error) {
  if (cfg.backend == "auto") return create_auto(cfg, out, error);
  const Kind* k = find(cfg.backend);
  if (!k) {
    *error = "unknown backend '" + cfg.backend + "' (auto, thread, uring, uring-sqpoll, shim)";
    return -EINVAL;
  }
  if (!k->create) {
    *error = "backend '" + cfg.backend + "' is not available in this build (no liburing)";
    return -ENOSYS;
  }
  return k->create(cfg, out, error);
}

}  // namespace flexsc::detail
