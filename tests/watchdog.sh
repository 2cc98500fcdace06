#!/usr/bin/env bash
# Runs a test's command with a deadline a bit below ctest's TIMEOUT.  When
# the deadline passes, every thread's stack of every process the command
# started that still runs is printed (gdb in batch mode), then they are
# killed: a hang fails with where it hung instead of a silent timeout.
#
#   watchdog.sh <ctest-timeout-seconds> <command> [args...]
#   watchdog.sh --stacks <pid>...    the stacks of these processes and their
#                                    descendants only (tests/watchdog.h)
#
# The processes are the command's descendants, and any that carry this
# run's tag in their environment (reparented ones: daemons, orphans).
# gdb needs the right to trace them (root, or Yama's ptrace_scope 0);
# without it, where each thread is in the kernel still shows.
set -uo pipefail

# Leaves time for gdb, which takes seconds to attach to a process under
# ASan with debug information to read, and longer on a loaded machine;
# short timeouts leave at least two thirds to the command.
margin_for() { local t=$1; echo $((t / 3 < 30 ? t / 3 : 30)); }

unistd=/usr/include/x86_64-linux-gnu/asm/unistd_64.h
syscall_name() { sed -n "s/^#define __NR_\([a-z0-9_]*\) $1\$/\1/p" "$unistd" 2>/dev/null; }

# Where each thread of a process is in the kernel, read from /proc (no
# ptrace, so never slow): its name, state, system call and wait channel.
kernel_view() {
  local task comm stat state call wchan
  local -a sc
  for task in /proc/"$1"/task/*; do
    read -r comm 2>/dev/null <"$task/comm" || continue
    read -r stat 2>/dev/null <"$task/stat" || continue
    state=${stat##*) }
    state=${state%% *}
    read -r -a sc 2>/dev/null <"$task/syscall"
    case "${sc[0]:-}" in
      running | "") call=${sc[0]:-?} ;;
      -1) call="(not in a call)" ;;
      *) call="$(syscall_name "${sc[0]}")#${sc[0]}(${sc[1]:-}, ${sc[2]:-}, ${sc[3]:-})" ;;
    esac
    read -r wchan 2>/dev/null <"$task/wchan"
    echo "  thread ${task##*/} $comm: $state $call ${wchan:+waits in $wchan}"
  done
}

# stacks <seconds> <pid>...: the kernel's view of every process at once,
# then gdb's backtraces one process after the other, the newest process
# first (the test's program, rather than the shells that started it),
# until the time is up.
stacks() {
  local end=$((SECONDS + $1)) pid left
  shift
  for pid in "$@"; do
    echo "watchdog: process $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")"
    kernel_view "$pid"
  done
  for pid in $(printf '%s\n' "$@" | sort -rn); do
    left=$((end - SECONDS))
    echo "watchdog: ---- gdb on process $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || echo '(gone)')"
    [ "$left" -gt 0 ] || { echo "watchdog: no time left for gdb"; continue; }
    # gdb's chatter about loading symbols says nothing of the hang.
    timeout -k 2 "$left" nice -n -5 gdb -nx -q -batch -p "$pid" -iex 'set auto-load python-scripts off' \
      -ex 'set pagination off' -ex 'info threads' -ex 'thread apply all bt' </dev/null 2>&1 |
      grep -v -e '^\[New LWP' -e '^\[Thread debugging' -e '^Using host libthread_db' -e '^warning: .*debug' \
        -e '^Downloading' -e '^nice: '
    [ "${PIPESTATUS[0]}" -lt 124 ] || echo "watchdog: gdb did not finish within $left s"
  done
}

# descendants <root-pid>...: the pids of the roots' descendants, and,
# when the run has a tag, of orphans (reparented to init) that carry it
# and of their descendants.  Not this script's own helpers: itself (when
# not a root), the subshell this runs in ($BASHPID) and, in a pipeline,
# the one above it, with their children.
descendants() {
  local -A parent root
  local stat pid line p r self=$BASHPID helper
  for stat in /proc/[0-9]*/stat; do
    pid=${stat#/proc/}
    pid=${pid%/stat}
    # The parent is the second field after the name, which may hold
    # spaces and parentheses: it ends at the last ')'.
    read -r line 2>/dev/null <"$stat" || continue
    line=${line##*) }
    line=${line#* }
    parent[$pid]=${line%% *}
  done
  helper=${parent[$self]}
  [ "$helper" != "$$" ] || helper=$self
  for r in "$@"; do root[$r]=1; done
  for pid in "${!parent[@]}"; do
    [ -n "$tag" ] && [ "${parent[$pid]}" = 1 ] &&
      grep -qzxF "FLEXSC_TEST_WATCHDOG_TAG=$tag" "/proc/$pid/environ" 2>/dev/null && root[$pid]=orphan
  done
  for pid in "${!parent[@]}"; do
    p=$pid
    while [ -z "${root[$p]:-}" ] && [ "$p" != "$$" ] && [ "$p" != "$self" ] && [ "$p" != "$helper" ] &&
      [ "$p" != "$sleeper" ] && [ "${p:-0}" -gt 1 ]; do
      p=${parent[$p]:-}
    done
    [ -n "${root[$p]:-}" ] && [ "${root[$pid]:-}" != 1 ] && echo "$pid"
  done
}

tag=""
sleeper=""
if [ "${1:-}" = --stacks ]; then
  shift
  mapfile -t pids < <(printf '%s\n' "$@"; descendants "$@")
  stacks 30 "${pids[@]}"
  exit 0
fi

timeout_s=${1:?usage: watchdog.sh <ctest-timeout-seconds> <command> [args...]}
shift
[ $# -gt 0 ] || { echo "usage: watchdog.sh <ctest-timeout-seconds> <command> [args...]" >&2; exit 2; }
margin=$(margin_for "$timeout_s")
deadline=$((timeout_s - margin))
tag="$$.$(date +%s%N)"
export FLEXSC_TEST_WATCHDOG_TAG=$tag

kill_all() {
  local pids
  mapfile -t pids < <(descendants $$)
  [ ${#pids[@]} -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null
}
trap 'kill_all; exit 143' TERM INT

# Started as a plain program would be: a background command of a shell
# without job control would have SIGINT and SIGQUIT ignored and stdin
# from /dev/null.
env --default-signal=INT,QUIT "$@" 0<&0 &
child=$!
sleep "$deadline" >/dev/null 2>&1 &
sleeper=$!
wait -n -p ended "$child" "$sleeper"
rc=$?
if [ "${ended:-}" = "$child" ]; then
  kill "$sleeper" 2>/dev/null
  # Killed by a signal (or an exit status above 128, which bash cannot
  # tell apart): so is this script, for ctest to say which.
  if [ "$rc" -gt 128 ]; then
    trap - TERM INT
    ulimit -c 0
    kill -s $((rc - 128)) $$
  fi
  exit "$rc"
fi

echo "watchdog: the test did not finish within $deadline s (its TIMEOUT is $timeout_s s): hung; stacks follow"
mapfile -t pids < <(descendants $$ | sort -n)
ps -o pid,ppid,stat,etime,args -p "$(IFS=,; echo "${pids[*]}")" 2>/dev/null
[ ${#pids[@]} -eq 0 ] || stacks $((margin - 3)) "${pids[@]}"
kill_all
echo "watchdog: killed ${#pids[@]} processes"
exit 124
