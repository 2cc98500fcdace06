#!/usr/bin/env bash
# Installs the Debian 12 packages flexsc needs, if any is missing.
# Sourced by bench.sh and test.sh; safe to run on its own.
set -euo pipefail

FLEXSC_PACKAGES=(
  build-essential cmake pkg-config   # toolchain
  libhwloc-dev                       # topology and pinning of syscall threads
  libboost-dev                       # Boost.Lockfree: the syscall cores' ready queues
  liburing-dev                       # the io_uring backends
  libbenchmark-dev                   # bench/flexsc_bench
  libgtest-dev                       # tests
  util-linux                         # taskset, for the single-CPU test
)

missing=()
for pkg in "${FLEXSC_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "flexsc: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
