#!/usr/bin/env bash
# A real server under the drop-in wrapper: nginx (Debian's nginx-light)
# serves a static tree on loopback under flexsc-run, ab (apache2-utils)
# loads it; every response must be complete and correct, every file must
# come back byte for byte, and nginx must stop cleanly on SIGQUIT (its
# workers' epoll_wait has to end with EINTR for that).  Bounded in time;
# it stops the server itself.
#
#   server.sh <flexsc-run> [route]     route: all (default), auto, none
# Exit 77 (skip, with the reason) when nginx or ab is not installed.
set -uo pipefail
run=${1:?usage: server.sh <flexsc-run> [route]}
route=${2:-all}
[ -x "$(command -v nginx || echo /usr/sbin/nginx)" ] || { echo "SKIP: nginx is not installed (scripts/deps.sh tests installs nginx-light)"; exit 77; }
command -v ab >/dev/null || { echo "SKIP: ab is not installed (apache2-utils)"; exit 77; }

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=nginx-lib.sh
. "$here/nginx-lib.sh"

if ! start_server "$run" "$route" "$tmp/stats.txt"; then
  echo "FAIL: nginx did not start under flexsc-run"; cat "$tmp/logs/error.log" "$tmp/logs/stdout" 2>/dev/null | tail -20
  exit 1
fi

status=0
# Every file, byte for byte, over HTTP/1.0.
for f in index.html page.bin dir/large.bin dir/numbers.txt; do
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /%s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$f" >&3
  # The body follows the first empty line.
  if ! cmp -s <(sed '1,/^\r$/d' <&3) "$www/$f"; then
    echo "FAIL: /$f came back different"; status=1
  fi
  exec 3<&-
done
# Load: every response complete and a 200.
for f in index.html page.bin dir/large.bin; do
  out=$(timeout 60 ab -q -n 2000 -c 16 -k "http://127.0.0.1:$port/$f" 2>&1)
  complete=$(sed -n 's/^Complete requests: *//p' <<<"$out")
  failed=$(sed -n 's/^Failed requests: *//p' <<<"$out")
  non2xx=$(sed -n 's/^Non-2xx responses: *//p' <<<"$out")
  rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$out")
  echo "/$f: $complete complete, ${failed:-?} failed, ${non2xx:-0} non-2xx, $rps requests/s"
  if [ "$complete" != 2000 ] || [ "$failed" != 0 ] || [ -n "$non2xx" ]; then
    echo "FAIL: ab on /$f"; tail -n 20 <<<"$out"; status=1
  fi
done
# A graceful stop: the workers finish, the master exits.
if ! stop_server; then echo "FAIL: nginx did not stop within 10 s of SIGQUIT"; status=1; fi
# Every process reports its decisions (the master and its worker): all
# routes calls; auto decides per call (and may route none of nginx's).
reports=$(grep -c '^flexsc: preload: [0-9]* calls routed' "$tmp/stats.txt" 2>/dev/null)
routed=$(sed -n 's/^flexsc: preload: \([0-9]*\) calls routed.*/\1/p' "$tmp/stats.txt" 2>/dev/null | awk '{s += $1} END {print s + 0}')
echo "decisions reported by ${reports:-0} processes; calls routed through flexsc: $routed"
grep '^flexsc: preload: [0-9]' "$tmp/stats.txt" 2>/dev/null
if [ "${reports:-0}" -lt 2 ]; then echo "FAIL: the master and its worker should both report"; status=1; fi
if [ "$route" = all ] && [ "$routed" -le 0 ]; then echo "FAIL: nothing was routed"; status=1; fi
if grep -q "\[alert\]\|\[emerg\]\|\[crit\]" "$tmp/logs/error.log" 2>/dev/null; then
  echo "FAIL: nginx logged errors:"; grep "\[alert\]\|\[emerg\]\|\[crit\]" "$tmp/logs/error.log" | head; status=1
fi
[ $status -eq 0 ] && echo "ok: nginx under flexsc-run (route $route)"
exit $status
