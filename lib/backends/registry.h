// The backends by name: the built-in ones, chosen by FLEXSC_BACKEND or the
// options (`auto` picks), and any a test program adds.
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"
#include "base/config.h"

namespace flexsc::detail {

using BackendFactory = int (*)(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error);

// Makes `name` a backend the runtime can start (a test's own, such as one
// that answers wrongly on purpose).  Call before the runtime starts; the
// name must outlive the process.  False when the table is full or the
// name is taken.
bool register_backend(const char* name, BackendFactory create);

// Creates cfg.backend.  A forced backend that cannot start is an error
// (-EINVAL for a name nobody knows, -ENOSYS for one this build lacks,
// the backend's own error otherwise), never a silent fallback.
int create_backend(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error);

}  // namespace flexsc::detail
