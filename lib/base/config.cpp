#include "base/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/topology.h"

namespace flexsc::detail {
namespace {

// The option's value, unless the environment variable overrides it.
const char* setting(const char* env, const char* option) {
  const char* v = std::getenv(env);
  return v && *v ? v : option;
}

}  // namespace

std::string stats_destination(const char* option) {
  const char* s = setting("FLEXSC_STATS", option);
  return s && std::strcmp(s, "0") != 0 ? s : "";
}

int Config::load(const flexsc_options* opts, Config* out, std::string* error) {
  *out = Config{};
  flexsc_options o{};
  if (opts) {
    if (opts->size < offsetof(flexsc_options, backend) || opts->size > (1u << 16)) {
      *error = "flexsc_options.size must be sizeof(struct flexsc_options)";
      return -EINVAL;
    }
    // Copy what the caller's (possibly older, smaller) struct has.
    std::memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
  }
  if (const char* b = setting("FLEXSC_BACKEND", o.backend)) out->backend = b;
  if (const char* cores = setting("FLEXSC_SYSCALL_CORES", o.syscall_cores)) {
    out->cores_forced = true;
    if (std::strcmp(cores, "none") != 0 && !parse_cpu_list(cores, &out->syscall_cpus)) {
      *error = std::string("bad syscall core list '") + cores + "' (e.g. 1, 2-3,6, or none)";
      return -EINVAL;
    }
  }
  out->stats = stats_destination(o.stats);
  if (o.drain_spin_us) out->drain_spin_ns = uint64_t{o.drain_spin_us} * 1000;
  if (o.wait_spin_us) out->wait_spin_ns = uint64_t{o.wait_spin_us} * 1000;
  if (o.max_syscall_threads) {
    if (o.max_syscall_threads > kMaxSyscallThreadsPerCore) {
      *error = "max_syscall_threads is at most " + std::to_string(kMaxSyscallThreadsPerCore);
      return -EINVAL;
    }
    out->max_syscall_threads = o.max_syscall_threads;
  }
  return 0;
}

}  // namespace flexsc::detail
