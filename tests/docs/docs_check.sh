#!/usr/bin/env bash
# The documents hold together: README.md is at most 150 lines; every
# relative link in a Markdown file leads to a file, and to a heading where
# it names one; every document is reachable from README.md; nothing refers
# to the design notes the project started from outside the repository;
# docs/dependencies.md explains every package scripts/deps.sh installs.
#   docs_check.sh <source dir>
set -u
src=$(cd "${1:?usage: docs_check.sh <source dir>}" && pwd)
cd "$src" || exit 1
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# The repository's files: git's list in a checkout, else every file but
# build trees.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files() { git ls-files --cached --others --exclude-standard; }
else
  files() { find . -path ./.git -prune -o -path './build*' -prune -o -type f -print | sed 's|^\./||'; }
fi
mapfile -t docs < <(files | grep '\.md$' | sort)

# Lines of a Markdown file outside fenced code blocks.
prose() { awk '/^```/ { fence = !fence; next } !fence' "$1"; }
# GitHub's anchor for each heading of a Markdown file.
anchors() {
  prose "$1" | sed -n 's/^#\{1,6\} \{1,\}//p' | tr 'A-Z' 'a-z' |
    sed 's/[^a-z0-9 _-]//g; s/ /-/g'
}
# The relative links of a Markdown file, one a line.
links() {
  prose "$1" | grep -o '\]([^) ]*)' | sed 's/^](//; s/)$//' |
    grep -v '^[a-z][a-z]*:' | grep -v '^#' || true
}

lines=$(wc -l <README.md)
[ "$lines" -le 150 ] || fail "README.md has $lines lines, more than 150"

# Links, and the graph of documents they make.
: >"${TMPDIR:-/tmp}/flexsc-docs-edges.$$"
edges=${TMPDIR:-/tmp}/flexsc-docs-edges.$$
trap 'rm -f "$edges"' EXIT
for doc in "${docs[@]}"; do
  dir=$(dirname "$doc")
  while read -r link; do
    [ -n "$link" ] || continue
    path=${link%%#*}
    anchor=${link#"$path"}
    anchor=${anchor#\#}
    target=$(realpath -m --relative-to=. "$dir/$path")
    case $target in
    ../*) fail "$doc: link $link leaves the repository"; continue ;;
    esac
    if [ ! -e "$target" ]; then
      fail "$doc: link $link: $target does not exist"
      continue
    fi
    [ -d "$target" ] && [ -f "$target/README.md" ] && target=$target/README.md
    if [ -n "$anchor" ] && [[ $target == *.md ]] && ! anchors "$target" | grep -qx -- "$anchor"; then
      fail "$doc: link $link: $target has no heading for #$anchor"
    fi
    [[ $target == *.md ]] && echo "$doc $target" >>"$edges"
  done < <(links "$doc")
done

# Every document is reachable from README.md.  The benchmark runs under
# docs/results/ are reached through its index, which the scripts rewrite.
reached=" README.md "
frontier=(README.md)
while [ ${#frontier[@]} -gt 0 ]; do
  next=()
  for doc in "${frontier[@]}"; do
    for t in $(awk -v d="$doc" '$1 == d { print $2 }' "$edges"); do
      [[ $reached == *" $t "* ]] && continue
      reached+="$t "
      next+=("$t")
    done
  done
  frontier=("${next[@]}")
done
for doc in "${docs[@]}"; do
  [[ $doc == docs/results/*/* ]] && continue
  [[ $reached == *" $doc "* ]] || fail "$doc cannot be reached by links from README.md"
done

# Nothing refers to files outside the repository (the notes the project
# began from), by name or by path.
outside='(^|[^A-Za-z])(DESIGN|MISSION|KERNEL-SHIM|MN-THREADS|STYLE)[.]md|[.][.]/shared/'
while IFS= read -r hit; do
  fail "refers to a file outside the repository: $hit"
done < <(files | while read -r f; do
  [ -f "$f" ] && grep -IHnE "$outside" "$f"
done)

# docs/dependencies.md explains every package scripts/deps.sh installs.
packages=$(sed -n '/^FLEXSC_[A-Z_]*PACKAGES=(/,/^)/p' scripts/deps.sh | grep -v '^FLEXSC_\|^)' |
  sed 's/#.*//' | tr ' ' '\n' | grep -v '^$')
[ -n "$packages" ] || fail "found no package lists in scripts/deps.sh"
for p in $packages; do
  grep -qF "\`$p\`" docs/dependencies.md || fail "scripts/deps.sh installs $p; docs/dependencies.md does not say what for"
done

if [ "$failures" -ne 0 ]; then
  echo "$failures problem(s) in the documents"
  exit 1
fi
echo "ok: ${#docs[@]} documents, README.md $lines lines, links and packages in order"
