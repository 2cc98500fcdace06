#!/usr/bin/env bash
# flexsc-run's --help, its man page (man/flexsc-run.1) and what the code
# reads must agree: the same options, each with the same argument and
# the same environment variable as the launcher's parser gives it, and
# every FLEXSC_* variable the library, the wrapper or the launcher reads
# documented in the man page and in --help, none that nothing reads.  The
# library's own variables (those outside lib/preload/) are also those of
# flexsc_init(3).
#   flexsc_run_docs.sh <built flexsc-run> <source dir>
set -u
run=${1:?usage: flexsc_run_docs.sh <built flexsc-run> <source dir>}
src=${2:?usage: flexsc_run_docs.sh <built flexsc-run> <source dir>}
if ! command -v groff >/dev/null; then
  echo "SKIP: groff is not installed (scripts/deps.sh installs groff-base)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-run-docs.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# A man page as plain text: wide lines, no hyphenation, no overstriking.
render() { groff -man -Tascii -P-cbou -rLL=300n -rHY=0 "$1" 2>/dev/null; }
# The lines of one section of a rendered page.
section() { awk -v s="$1" '/^[A-Z]/ { on = ($0 == s); next } on'; }
vars() { grep -o 'FLEXSC_[A-Z0-9_]*' | sort -u; }

# Options as "short long ARG|- VAR...|-", one a line, sorted, from lines
# "-x, --long [ARG]  text...": the argument is the word after the long
# option, before a gap of two spaces or more.
options_of() {
  local re='^(-[A-Za-z]), (--[a-z-]+)( ([A-Za-z]+))?  +(.*)$' line arg var
  while IFS= read -r line; do
    [[ $line =~ $re ]] || { echo "? $line"; continue; }
    arg=${BASH_REMATCH[4]:--}
    var=$(grep -o 'FLEXSC_[A-Z0-9_]*' <<<"${BASH_REMATCH[5]}" | sort -u | tr '\n' ' ')
    echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${arg^^} ${var:--}"
  done | sed 's/ *$//' | sort
}

# 1. The parser: "-b|--backend) export FLEXSC_BACKEND=${2:?...}".
sed -n 's/^ *\(-[A-Za-z]\)|\(--[a-z-]*\)) \(.*\)$/\1 \2 \3/p' "$src/tools/flexsc-run.in" |
  while read -r short long body; do
    arg=-
    [[ $body == *'${2:?'* ]] && arg=VALUE
    var=$(grep -o 'export FLEXSC_[A-Z0-9_]*' <<<"$body" | sed 's/export //' | sort -u | tr '\n' ' ')
    echo "$short $long $arg ${var:--}"
  done | sed 's/ *$//' | sort >"$tmp/parser"

# 2. --help: an option starts a line "  -x, --long ..."; deeper lines go on.
"$run" --help >"$tmp/help.txt" 2>&1 || fail "flexsc-run --help exits $?"
awk '/^options:/ { on = 1; next } /^$/ { on = 0 }
     on && /^  -/ { if (line) print line; line = $0; next }
     on { line = line " " $0 }
     END { if (line) print line }' "$tmp/help.txt" | sed 's/^ *//' | options_of >"$tmp/help"

# 3. The man page: a tag line "       -x, --long arg", its body deeper.
render "$src/man/flexsc-run.1" >"$tmp/man.txt"
section OPTIONS <"$tmp/man.txt" |
  awk '/^       -/ { if (line) print line; sub(/^ +/, ""); line = $0 "  "; next }
       /^ +[^ ]/ { sub(/^ +/, ""); line = line " " $0 }
       END { if (line) print line }' | options_of >"$tmp/man"

# same <list a> <list b> <what a and b are>: no line differs.
same() {
  diff "$1" "$2" >"$tmp/diff" || { fail "$3 differ:"; sed 's/^/    /' "$tmp/diff"; }
}
# Argument names differ in case and wording; the parser only knows that
# there is one.
norm() { awk '{ if ($3 != "-") $3 = "VALUE"; print }' "$1"; }
same <(norm "$tmp/parser") <(norm "$tmp/help") "the launcher's options (<) and --help (>)"
same <(norm "$tmp/parser") <(norm "$tmp/man") "the launcher's options (<) and man/flexsc-run.1 (>)"
same "$tmp/help" "$tmp/man" "--help (<) and man/flexsc-run.1 (>)"
[ -s "$tmp/parser" ] || fail "found no options in the launcher's parser"

# Variables: what the code reads (string literals naming one in lib/, and
# the launcher's own), against what the documents list.
grep -rhoE --include='*.c' --include='*.cpp' --include='*.h' '"FLEXSC_[A-Z0-9_]+' "$src/lib" |
  tr -d '"' | sort -u >"$tmp/read"
grep -rhoE --include='*.c' --include='*.cpp' --include='*.h' '"FLEXSC_[A-Z0-9_]+' "$src/lib" \
  --exclude-dir=preload | tr -d '"' | sort -u >"$tmp/library"
vars <"$src/tools/flexsc-run.in" | sort -u - "$tmp/read" -o "$tmp/read"
section ENVIRONMENT <"$tmp/man.txt" | grep -o '^       FLEXSC_[A-Z0-9_]*' | vars >"$tmp/man-env"
vars <"$tmp/help.txt" >"$tmp/help-env"
render "$src/man/flexsc_init.3" | section ENVIRONMENT | grep -o '^       FLEXSC_[A-Z0-9_]*' | vars >"$tmp/init-env"

# agree <list a> <list b> <what a is> <what b is>: the same names in both.
agree() {
  local only
  only=$(comm -23 "$1" "$2" | tr '\n' ' ')
  [ -z "$only" ] || fail "$3, not $4: $only"
  only=$(comm -13 "$1" "$2" | tr '\n' ' ')
  [ -z "$only" ] || fail "$4, not $3: $only"
}
agree "$tmp/read" "$tmp/man-env" "read by the code" "in flexsc-run(1) ENVIRONMENT"
agree "$tmp/read" "$tmp/help-env" "read by the code" "in flexsc-run --help"
agree "$tmp/library" "$tmp/init-env" "read by the library" "in flexsc_init(3) ENVIRONMENT"

if [ "$failures" -ne 0 ]; then
  echo "--- flexsc-run --help:"; cat "$tmp/help.txt"
  exit 1
fi
echo "ok: $(wc -l <"$tmp/parser") options and $(wc -l <"$tmp/read") variables agree:" \
  "$(tr '\n' ' ' <"$tmp/read")"
