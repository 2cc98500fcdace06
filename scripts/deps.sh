#!/usr/bin/env bash
# Installs the Debian 12 packages flexsc needs, if any is missing.
# Called by the benchmark launchers (bench/*.sh) and test.sh; safe to run on its own.
#   bash scripts/deps.sh         the library, tests and benchmarks
#   bash scripts/deps.sh tests   also what the kernel shim's tests and the
#                                drop-in wrapper's server test need ("shim" too)
set -euo pipefail

FLEXSC_PACKAGES=(
  build-essential cmake pkg-config   # toolchain
  libhwloc-dev                       # topology and pinning of syscall threads
  libboost-dev                       # Boost.Lockfree: the syscall cores' ready queues, fiber inboxes
  libboost-context-dev               # Boost.Context: the fibers' context switch (fcontext)
  liburing-dev                       # the io_uring backends
  libbenchmark-dev                   # bench/flexsc_bench
  jq                                 # bench/: reads the results' JSON, writes the shell benchmarks' own
  gnuplot-nox                        # bench/: draws the results' plots (SVG, PNG)
  libgtest-dev                       # tests
  groff-base                         # groff: the tests check the man pages in man/
  clang-format                       # the tests check the C++ tree against .clang-format
  gdb                                # tests/watchdog.sh: every thread's stack of a hung test
  util-linux                         # taskset, for the single-CPU test
  coreutils tar gzip sqlite3         # programs the drop-in wrapper's tests run
  libsqlite3-dev                     # tests/mn: SQLite from several threads under --threads mn
)
# A QEMU guest booting Debian's kernel, the module built against its
# headers; without recommended packages (QEMU's recommend a desktop).
FLEXSC_SHIM_PACKAGES=(
  linux-headers-amd64                # building kernel-shim/
  qemu-system-x86                    # the guest (TCG)
  busybox-static cpio                # the guest's initramfs
)

# A real server and load generators for the drop-in wrapper's test and
# benchmark; installed without starting the server's service.
FLEXSC_SERVER_PACKAGES=(
  nginx-light                        # the real server under the wrapper
  apache2-utils                      # ab: checks every response
  wrk                                # the benchmark's load
)

missing_of() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
updated=""
install() {  # install <apt-get install options...> -- <packages...>
  local opts=()
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  [ $# -gt 0 ] || return 0
  echo "flexsc: installing $*"
  if [ -z "$updated" ]; then $SUDO apt-get update -qq; updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${opts[@]}" "$@" >/dev/null
}

mapfile -t missing < <(missing_of "${FLEXSC_PACKAGES[@]}")
install -- "${missing[@]}"
if [ "${1:-}" = shim ] || [ "${1:-}" = tests ]; then
  mapfile -t missing < <(missing_of "${FLEXSC_SHIM_PACKAGES[@]}")
  install --no-install-recommends -- "${missing[@]}"
fi
if [ "${1:-}" = tests ] || [ "${1:-}" = server ]; then
  mapfile -t missing < <(missing_of "${FLEXSC_SERVER_PACKAGES[@]}")
  if [ ${#missing[@]} -gt 0 ]; then
    # Debian starts a service at installation unless policy-rc.d says no.
    policy=/usr/sbin/policy-rc.d
    made_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && made_policy=1
    fi
    install --no-install-recommends -- "${missing[@]}"
    [ -z "$made_policy" ] || $SUDO rm -f "$policy"
  fi
fi
