#!/usr/bin/env bash
# Boots Debian's kernel under QEMU with the flexsc kernel shim and runs
# test programs inside it; the host side of every shim test.
#
#   guest.sh <workdir> <kernel-shim dir> <program> [<program> ...]
#
# Builds the module from <kernel-shim dir> (in <workdir>, against the
# newest installed Debian headers), boots, loads it, runs the programs.
# Each program is a host binary, copied into the initramfs with every
# library ldd lists; /init loads the module and runs each program in
# turn with its arguments after a '::' (e.g. "bin/test_shim::--gtest_brief=1").
# An argument VAR=value (no slash before the '=') sets an environment
# variable for the programs after it.  FETCH=<guest path> copies that file
# back after the programs ran, to <workdir>/<its name>, through the serial
# console.
# Programs write results the host reads back from the serial console.
# FLEXSC_GUEST_APPEND adds to the kernel's command line (to debug a hang:
# "loglevel=7 softlockup_all_cpu_backtrace=1"); FLEXSC_GUEST_TIMEOUT
# bounds the boot, in seconds.
# Exit status: 0 when every program exited 0 and the kernel logged no
# BUG, WARNING or Oops; 1 otherwise; 77 (SKIP) when QEMU, the kernel
# headers or the kernel image cannot be had here, saying why.
#
# The kernel image (Debian's linux-image of the installed headers' ABI) is
# downloaded once into ${FLEXSC_CACHE:-~/.cache/flexsc}, outside the tree.
set -uo pipefail

work=$(mkdir -p "$1" && cd "$1" && pwd) shim_src=$(cd "$2" && pwd)
shift 2
mkdir -p "$work"
t0=$SECONDS

skip() { echo "SKIP: $*"; exit 77; }

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (package qemu-system-x86)"
[ -x /bin/busybox ] || skip "busybox is not installed (package busybox-static)"
kv=$(ls /usr/src 2>/dev/null | sed -n 's/^linux-headers-\(.*-amd64\)$/\1/p' | sort -V | tail -1)
[ -n "$kv" ] || skip "no Debian kernel headers (package linux-headers-amd64)"

# The kernel: Debian's image of the same ABI as the headers the module was
# built against, unpacked, never installed.
cache=${FLEXSC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flexsc}
img=$cache/linux-image-$kv
if [ ! -s "$img/vmlinux" ]; then
  mkdir -p "$cache" && rm -rf "$img.tmp" && mkdir -p "$img.tmp"
  # A stale package list may not know the image yet: refresh it once.
  (cd "$img.tmp" && { apt-get download "linux-image-$kv" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get download "linux-image-$kv" >/dev/null 2>&1; }; }) ||
    skip "cannot download linux-image-$kv (apt-get download)"
  dpkg-deb -x "$img.tmp"/linux-image-"$kv"_*.deb "$img.tmp/root" || skip "cannot unpack linux-image-$kv"
  # Debian sets CONFIG_PVH: QEMU boots the uncompressed ELF directly, twice as
  # fast as vmlinuz.  vmlinuz holds it xz-compressed after its setup code.
  python3 - "$img.tmp/root/boot/vmlinuz-$kv" "$img.tmp/vmlinux" <<'PY' || skip "cannot extract vmlinux"
import lzma, sys
data = open(sys.argv[1], 'rb').read()
at = data.find(b'\xfd7zXZ\x00')
if at < 0:
    sys.exit("no xz stream in vmlinuz")
out = lzma.LZMADecompressor().decompress(data[at:])
open(sys.argv[2], 'wb').write(out)
PY
  rm -rf "$img.tmp/root"/* && mv "$img.tmp/vmlinux" "$img.tmp/vmlinux.elf" && rm -rf "$img" &&
    mkdir -p "$img" && mv "$img.tmp/vmlinux.elf" "$img/vmlinux" && rm -rf "$img.tmp"
fi
echo "guest kernel: $kv (cached in $img); prepared in $((SECONDS - t0)) s"

# The module, built out of the source tree.
t1=$SECONDS
rm -rf "$work/module" && mkdir -p "$work/module" && cp "$shim_src"/{Kbuild,Makefile,*.c,*.h} "$work/module/" || exit 1
if ! make -C "$work/module" KVER="$kv" FLEXSC_ROOT="$shim_src/.." >"$work/module/build.log" 2>&1; then
  cat "$work/module/build.log"; echo "FAIL: the module does not build against $kv"; exit 1
fi
if grep -E "warning:|error:" "$work/module/build.log"; then
  echo "FAIL: the module must build without warnings"; exit 1
fi
module=$work/module/flexsc_shim.ko
echo "module built in $((SECONDS - t1)) s"

# The initramfs: busybox, the module, the programs and their libraries.
root=$work/initramfs
rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,run} || exit 1
cp /bin/busybox "$root/bin/"
for app in sh mount insmod rmmod lsmod poweroff dmesg grep cat echo sleep mkdir ls ip setsid; do
  ln -s busybox "$root/bin/$app"
done
cp "$module" "$root/flexsc_shim.ko" || exit 1
# Programs go to /prog (the guest mounts a tmpfs over /tmp), their
# libraries to the paths ldd names.
mkdir -p "$root/prog"
copy_with_libs() {
  local bin=$1 libs
  cp "$bin" "$root/prog/" || return 1
  # A static binary (busybox) has none: ldd fails, and that is fine.
  libs=$(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*')
  for lib in $libs; do
    [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"; } || return 1
  done
}
runs=()
fetch=()
for spec in "$@"; do
  if [[ "$spec" == FETCH=* ]]; then
    fetch+=("${spec#FETCH=}")
    continue
  fi
  if [[ "$spec" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
    runs+=("export $spec")
    continue
  fi
  bin=$(readlink -f "${spec%%::*}")
  copy_with_libs "$bin" || exit 1
  # Arguments: whitespace-separated words, each quoted for the guest's shell.
  args=""
  if [[ "$spec" == *::* ]]; then
    for word in ${spec#*::}; do args+=" $(printf '%q' "$word")"; done
  fi
  runs+=("/prog/$(basename "$bin")$args")
done
{
  echo '#!/bin/sh'
  echo 'mount -t devtmpfs dev /dev; mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmp /tmp'
  echo 'export PATH=/bin HOME=/tmp TMPDIR=/tmp'
  echo 'ulimit -n 20000  # as on the host: the suites use high descriptor numbers'
  echo 'ip link set lo up  # the suites talk over loopback'
  echo 'if insmod /flexsc_shim.ko; then echo "FLEXSC-GUEST insmod ok"; else echo "FLEXSC-GUEST insmod failed"; fi'
  k=0
  for r in "${runs[@]}"; do
    if [[ "$r" == export* ]]; then echo "$r"; continue; fi
    k=$((k + 1))
    echo "echo 'FLEXSC-GUEST run #$k'"
    # Each in a session of its own, a process group leader, as under a shell.
    echo "setsid $r; echo \"FLEXSC-GUEST exit \$? #$k\""
  done
  for f in "${fetch[@]}"; do
    echo "echo 'FLEXSC-FILE-BEGIN $f'; cat '$f'; echo; echo 'FLEXSC-FILE-END'"
  done
  echo 'dmesg | grep -E "BUG|WARNING|Oops|Call Trace|flexsc" | sed "s/^/FLEXSC-DMESG /"'
  echo 'echo "FLEXSC-GUEST done"'
  echo 'poweroff -f'
} >"$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initramfs.gz" || exit 1

# KVM only where it really works (this kind's /dev/kvm is paravirtual,
# without vmx/svm, and guests crawl or abort there).
# Under TCG the guest kernel distrusts the emulated TSC and falls back to
# the HPET, where every clock_gettime is a syscall plus an emulated device
# read (0.9 us, against 0.09 us on the TSC): the library's waits read the
# clock, and real machines read the TSC.
accel="-accel tcg -cpu max" clock="clocksource=tsc tsc=reliable"
if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel="-accel kvm -cpu host" clock=; fi
log=$work/serial.log
t2=$SECONDS
timeout "${FLEXSC_GUEST_TIMEOUT:-1500}" qemu-system-x86_64 $accel -smp 2 -m 1024 -nographic -no-reboot -nic none \
  -kernel "$img/vmlinux" -initrd "$work/initramfs.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 $clock ${FLEXSC_GUEST_APPEND:-}" >"$log" 2>&1
qemu_rc=$?
echo "guest ran $((SECONDS - t2)) s (qemu exit $qemu_rc, $accel${clock:+, $clock}); $((SECONDS - t0)) s in all"

status=0
grep -a "FLEXSC-GUEST insmod ok" "$log" >/dev/null || { echo "FAIL: the module did not load"; status=1; }
k=0
for r in "${runs[@]}"; do
  [[ "$r" == export* ]] && continue
  k=$((k + 1))
  line=$(tr -d '\r' <"$log" | grep -a "FLEXSC-GUEST exit [0-9]* #$k\$" | tail -1)
  if [ -z "$line" ]; then
    echo "FAIL: no result from '$r'"; status=1
  elif [[ "$line" != *"exit 0 "* ]]; then
    echo "FAIL: '$r': ${line#FLEXSC-GUEST }"; status=1
  else
    echo "ok: $r"
  fi
done
for f in "${fetch[@]}"; do
  tr -d '\r' <"$log" | sed -n "\|^FLEXSC-FILE-BEGIN $f\$|,/^FLEXSC-FILE-END\$/p" | sed '1d;$d' >"$work/$(basename "$f")"
  [ -s "$work/$(basename "$f")" ] || { echo "FAIL: $f did not come back from the guest"; status=1; }
done
grep -a "FLEXSC-GUEST done" "$log" >/dev/null || { echo "FAIL: the guest did not finish (timeout or crash)"; status=1; }
if grep -aE "FLEXSC-DMESG .*(BUG|WARNING|Oops|Call Trace)|Kernel panic" "$log"; then
  echo "FAIL: the guest kernel logged the above"; status=1
fi
if [ $status -ne 0 ]; then
  echo "--- serial log (last 150 lines) ---"; tail -n 150 "$log"
fi
exit $status
