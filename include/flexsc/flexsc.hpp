// flexsc.hpp - a thin C++20 layer over the C API: an RAII runtime, a batch
// object owning a posting context, and typed syscall helpers.
#pragma once

#include <flexsc/flexsc.h>

#include <concepts>
#include <cstdint>
#include <system_error>
#include <type_traits>

namespace flexsc {

// A syscall argument: any integer, enum or pointer, passed as its register value.
template <class T>
concept SyscallArg =
    std::integral<T> || std::is_enum_v<T> || std::is_pointer_v<T> || std::is_null_pointer_v<T>;

template <SyscallArg T>
constexpr long to_arg(T v) noexcept {
  if constexpr (std::is_pointer_v<T>)
    return static_cast<long>(reinterpret_cast<std::uintptr_t>(v));
  else if constexpr (std::is_null_pointer_v<T>)
    return 0;
  else
    return static_cast<long>(v);
}

// One exception-less syscall: the raw result, -errno on failure.
template <SyscallArg... A>
requires(sizeof...(A) <= 6) long syscall(long nr, A... a) noexcept {
  long r[6] = {to_arg(a)...};
  return flexsc_syscall(nr, r[0], r[1], r[2], r[3], r[4], r[5]);
}

// Throws std::system_error for a negative result, else returns it.
inline long check(long ret, const char* what) {
  if (ret < 0) throw std::system_error(static_cast<int>(-ret), std::generic_category(), what);
  return ret;
}

// Starts the runtime for its lifetime.  Throws if flexsc_init fails.
class Runtime {
 public:
  explicit Runtime(const flexsc_options* opts = nullptr) { check(flexsc_init(opts), "flexsc_init"); }
  ~Runtime() { flexsc_shutdown(); }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  static const char* backend() noexcept { return flexsc_backend(); }
  static flexsc_stats stats() {
    flexsc_stats s{};
    check(flexsc_get_stats(&s), "flexsc_get_stats");
    return s;
  }
};

// A posting context of `pages` syscall pages, used by one thread at a time.
class Batch {
 public:
  explicit Batch(unsigned pages = 1) { check(flexsc_ctx_create(pages, &ctx_), "flexsc_ctx_create"); }
  // Waits for whatever is still in flight, then frees the context.
  ~Batch() {
    flexsc_entry* e;
    while (flexsc_ctx_destroy(ctx_) == -EBUSY)
      if (flexsc_wait(ctx_, &e) == 0) flexsc_seen(ctx_, e);
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Prepares one entry; nullptr when every entry is in use.
  template <SyscallArg... A>
  requires(sizeof...(A) <= 6) flexsc_entry* prep(long nr, A... a) noexcept {
    flexsc_entry* e = flexsc_get_entry(ctx_);
    if (e) {
      long r[6] = {to_arg(a)...};
      flexsc_prep(e, nr, r[0], r[1], r[2], r[3], r[4], r[5]);
    }
    return e;
  }
  flexsc_entry* prep_nop() noexcept {
    flexsc_entry* e = flexsc_get_entry(ctx_);
    if (e) flexsc_prep_nop(e);
    return e;
  }

  int submit() noexcept { return flexsc_submit(ctx_); }
  // The result of one entry, once DONE (the entry stays until seen()).
  long wait(flexsc_entry* e) noexcept { return flexsc_entry_done(e) ? e->ret : flexsc_wait_entry(ctx_, e); }
  // The oldest DONE entry, waiting for one; nullptr when nothing is in flight.
  flexsc_entry* wait_any() noexcept {
    flexsc_entry* e = nullptr;
    return flexsc_wait(ctx_, &e) == 0 ? e : nullptr;
  }
  flexsc_entry* peek() noexcept {
    flexsc_entry* e = nullptr;
    return flexsc_peek(ctx_, &e) == 0 ? e : nullptr;
  }
  void seen(flexsc_entry* e) noexcept { flexsc_seen(ctx_, e); }
  unsigned index(const flexsc_entry* e) const noexcept { return flexsc_entry_index(ctx_, e); }
  unsigned capacity() const noexcept { return flexsc_ctx_capacity(ctx_); }
  flexsc_ctx* native() const noexcept { return ctx_; }

 private:
  flexsc_ctx* ctx_ = nullptr;
};

}  // namespace flexsc
