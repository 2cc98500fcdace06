#!/usr/bin/env bash
# Runs a real program from Debian's packages natively and under flexsc-run
# with FLEXSC_ROUTE=all, each in a fresh copy of the same fixture, and
# compares stdout, the exit status and the files it left; then checks in
# the statistics file that calls were in fact routed through flexsc.
#
#   programs.sh <flexsc-run> <case>
# cases: cat cp sort ls md5sum tar-gzip sqlite, and own (a test program
# of ours, named by PROGRAM)
set -uo pipefail
run=${1:?usage: programs.sh <flexsc-run> <case>}
case_name=${2:?usage: programs.sh <flexsc-run> <case>}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-programs.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# A small tree: text files of several sizes, a nested directory, a symlink.
make_fixture() {
  local d=$1
  mkdir -p "$d/tree/sub/deeper"
  seq 1 20000 >"$d/tree/numbers.txt"
  head -c 300000 /dev/urandom | base64 >"$d/tree/sub/random.txt"
  for i in $(seq 1 40); do echo "file $i" >"$d/tree/sub/deeper/f$i.txt"; done
  printf 'no newline' >"$d/tree/sub/odd name.txt"
  ln -s numbers.txt "$d/tree/link"
}

# Every file, link and directory of a fixture gets the same time, so the
# two fixtures (and archives of them) match byte for byte.
settle_fixture() {
  find "$1/tree" -exec touch -h -d '2020-01-02 03:04:05' {} +
}

# The program's command line, run in the fixture's directory.
commands() {
  case "$case_name" in
    cat) echo 'cat tree/numbers.txt tree/sub/random.txt' ;;
    cp) echo 'cp -a tree copy && md5sum copy/numbers.txt copy/sub/random.txt && ls -l copy/sub/deeper | wc -l' ;;
    sort) echo 'sort -r tree/numbers.txt | head -n 5 && sort -n -r tree/numbers.txt >sorted.txt' ;;
    ls) echo 'ls -lR --time-style=+%F_%T tree' ;;
    md5sum) echo 'find tree -type f -print0 | sort -z | xargs -0 md5sum' ;;
    tar-gzip) echo 'tar -cf - tree | gzip -n >t.tgz && mkdir out && tar -xzf t.tgz -C out && diff -r tree out/tree && gzip -l t.tgz | tail -n 1 | wc -w && gzip -dc t.tgz | tar -t | sort' ;;
    own) echo "\"$PROGRAM\"" ;;
    sqlite) echo 'sqlite3 db.sqlite "create table t(a integer, b text); insert into t select value, hex(value) from generate_series(1, 5000); create index i on t(b); select count(*), sum(a), max(b) from t; vacuum; pragma integrity_check;"' ;;
    *) echo "unknown case $case_name" >&2; exit 2 ;;
  esac
}

cmd=$(commands) || exit 2
[ "$case_name" != sqlite ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 is not installed"; exit 77; }

for side in native wrapped; do
  mkdir -p "$tmp/$side"
  make_fixture "$tmp/$side"
done
# The fixtures must match byte for byte (the random file is made once).
cp "$tmp/native/tree/sub/random.txt" "$tmp/wrapped/tree/sub/random.txt"
settle_fixture "$tmp/native"
settle_fixture "$tmp/wrapped"

(cd "$tmp/native" && bash -c "$cmd") >"$tmp/native.out" 2>"$tmp/native.err"
native_rc=$?
stats=$tmp/stats.txt
# bash itself runs under the wrapper too, and (with --inherit) every
# program it starts.
(cd "$tmp/wrapped" && FLEXSC_ROUTE=all "$run" --inherit --stats-file "$stats" -- bash -c "$cmd") \
  >"$tmp/wrapped.out" 2>"$tmp/wrapped.err"
wrapped_rc=$?

status=0
if [ "$native_rc" != "$wrapped_rc" ]; then
  echo "FAIL: exit status $wrapped_rc under flexsc, $native_rc natively"; status=1
fi
if ! cmp -s "$tmp/native.out" "$tmp/wrapped.out"; then
  echo "FAIL: output differs"; diff "$tmp/native.out" "$tmp/wrapped.out" | head -n 20; status=1
fi
# The files each run left (db.sqlite's pages may differ in free space
# bookkeeping; sqlite's own output checks its contents).
if ! diff -r --exclude=db.sqlite "$tmp/native" "$tmp/wrapped" >"$tmp/tree.diff"; then
  echo "FAIL: the files left differ"; head -n 20 "$tmp/tree.diff"; status=1
fi
routed=$(sed -n 's/^flexsc: preload: \([0-9]*\) calls routed.*/\1/p' "$stats" 2>/dev/null | awk '{s += $1} END {print s + 0}')
if [ "${routed:-0}" -le 0 ]; then
  echo "FAIL: no call was routed through flexsc (statistics: $stats)"; cat "$stats" 2>/dev/null | head; status=1
fi
if grep -q "flexsc" "$tmp/wrapped.err"; then
  echo "FAIL: flexsc complained:"; grep "flexsc" "$tmp/wrapped.err" | head; status=1
fi
echo "$case_name: exit $wrapped_rc, $(wc -c <"$tmp/wrapped.out") bytes of output, $routed calls routed"
[ $status -eq 0 ] && echo "ok: $case_name"
exit $status
