#!/usr/bin/env bash
# The man pages in man/: groff formats each without a warning
# (groff -man -ww -z prints nothing), each full page has the sections a
# reader looks for, every .so page points at a page that exists, every
# page named in a NAME line or in SEE ALSO exists, and every function of
# include/flexsc/flexsc.h has a page.
#   man_pages.sh <source dir>
set -u
src=${1:?usage: man_pages.sh <source dir>}
if ! command -v groff >/dev/null; then
  echo "SKIP: groff is not installed (scripts/deps.sh installs groff-base)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-man.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# A man hierarchy, so that ".so man3/x.3" resolves as it does once installed.
mkdir -p "$tmp/man1" "$tmp/man3"
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

pages=("$src"/man/*.[13])
[ -e "${pages[0]}" ] || { echo "FAIL: no pages in $src/man"; exit 1; }
for page in "${pages[@]}"; do
  ln -s "$page" "$tmp/man${page##*.}/$(basename "$page")"
done

for page in "${pages[@]}"; do
  name=$(basename "$page")
  section=${name##*.}
  out=$(cd "$tmp" && groff -man -ww -z "man$section/$name" 2>&1)
  [ -z "$out" ] || fail "$name: groff -man -ww -z says: $out"
  if so=$(sed -n '1s/^\.so //p' "$page") && [ -n "$so" ]; then
    [ "$(wc -l <"$page")" -eq 1 ] || fail "$name: a .so page holds that one line only"
    [ -f "$tmp/$so" ] || fail "$name: .so $so: no such page"
    continue
  fi
  required=("NAME" "SYNOPSIS" "DESCRIPTION" "SEE ALSO")
  if [ "$section" = 1 ]; then
    required+=("OPTIONS" "EXIT STATUS")
  else
    required+=("RETURN VALUE" "ERRORS")
  fi
  for s in "${required[@]}"; do
    grep -qx "\.SH \"\{0,1\}$s\"\{0,1\}" "$page" || fail "$name: no $s section"
  done
  # Every name the page documents opens it: itself or a .so page to it.
  names=$(sed -n '/^\.SH NAME/{n;p;q}' "$page" | sed 's/ \\-.*//; s/,/ /g')
  for n in $names; do
    n=${n//\\-/-}
    target=$src/man/$n.$section
    if [ ! -f "$target" ]; then
      fail "$name: NAME lists $n, but man/$n.$section does not exist"
    elif [ "$target" != "$page" ] && [ "$(cat "$target")" != ".so man$section/$name" ]; then
      fail "$name: man/$n.$section is not a .so page to man$section/$name"
    fi
  done
  # Pages of ours named in SEE ALSO exist.
  sed -n '/^\.SH SEE ALSO/,$p' "$page" | grep -o '^\.BR flexsc[^ ]* ([0-9])' |
    sed 's/^\.BR //; s/\\-/-/g; s/ (\([0-9]\))/.\1/' | while read -r ref; do
      [ -f "$src/man/$ref" ] || echo "FAIL: $name: SEE ALSO names $ref, which man/ does not have"
    done | grep . && failures=$((failures + 1))
done

# Every function of the C API has a page.
for fn in $(grep -o '\bflexsc_[a-z_]*[[:space:]]*(' "$src/include/flexsc/flexsc.h" | tr -d ' (' | sort -u); do
  [ -f "$src/man/$fn.3" ] || fail "include/flexsc/flexsc.h: $fn has no page man/$fn.3"
done

if [ "$failures" -ne 0 ]; then
  echo "$failures problem(s) in the man pages"
  exit 1
fi
echo "ok: ${#pages[@]} pages format cleanly and are complete"
