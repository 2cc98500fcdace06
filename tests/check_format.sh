#!/usr/bin/env bash
# The C++ tree follows .clang-format.  C keeps the kernel's and liburing's
# style (tabs): the kernel shim, the headers it shares (abi/), the public C
# headers, the C programs of examples/, bench/ and tests/, and the test
# that builds the module's decision code; none is checked here.  Prints the
# files that differ, and how to fix them.
#   check_format.sh <source dir>
set -uo pipefail
cd "$1" || exit 2
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed (scripts/deps.sh tests installs it)"; exit 77; }
cxx='\.(cpp|hpp)$|^(lib|tests)/.*\.h$'
c_header='^tests/abi/module_decide\.h$'
mapfile -t files < <(git ls-files 'include/*' 'lib/*' 'tests/*' 'bench/*' 'examples/*' 2>/dev/null |
                       grep -E "$cxx" | grep -vE "$c_header")
if [ ${#files[@]} -eq 0 ]; then
  # Not a git checkout (a source tarball): take what is there.
  mapfile -t files < <(find include lib tests bench examples -type f | sort | grep -E "$cxx" | grep -vE "$c_header")
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'not formatted: %s\n' "${bad[@]}"
  echo "format: ${#bad[@]} of ${#files[@]} files differ from .clang-format; run: clang-format -i <file>"
  exit 1
fi
echo "format: ${#files[@]} files follow .clang-format"
