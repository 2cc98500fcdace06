#!/usr/bin/env bash
# Installs an already-built flexsc tree into a temporary prefix, then
# builds and runs an outside program against it several ways:
#   1. CMake package: find_package(flexsc) + flexsc::flexsc
#   2. pkg-config:    cc main.c $(pkg-config --cflags --libs flexsc), and
#      the archive with the flags of pkg-config --static
#   3. CMake package, static: flexsc::flexsc_static
# and checks the installed layout (libraries, headers, package files, man
# pages).  Every check runs; the exit status is non-zero if any failed,
# and the log says exactly which.
#
# usage: run.sh <flexsc build dir> [cmake] [C compiler] [C++ compiler]
set -u
build=${1:?usage: run.sh <flexsc build dir> [cmake] [cc] [c++]}
cmake=${2:-cmake}
cc=${3:-cc}
cxx=${4:-c++}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
expected="flexsc consumer: getppid ok"
failures=()

fail() {
	echo "FAIL: $*"
	failures+=("$*")
}

# Runs "$@", printing its output only if it fails.
quiet() {
	local log=$tmp/cmd.log
	if ! "$@" >"$log" 2>&1; then
		echo "--- $* failed:"
		sed 's/^/    /' "$log"
		return 1
	fi
}

check_output() { # <what> <program> [env...]
	local what=$1 prog=$2 out rc
	shift 2
	out=$(env "$@" "$prog" 2>"$tmp/stderr")
	rc=$?
	if [ $rc -ne 0 ]; then
		fail "$what: exit status $rc; stderr: $(cat "$tmp/stderr")"
	elif [ "$out" != "$expected" ]; then
		fail "$what: printed '$out', expected '$expected'"
	else
		echo "ok: $what"
	fi
}

echo "== cmake --install $build --prefix $prefix"
if ! quiet "$cmake" --install "$build" --prefix "$prefix"; then
	fail "cmake --install"
	exit 1
fi

# ---- layout -------------------------------------------------------------------
for h in flexsc/flexsc.h flexsc/entry.h; do
	[ -f "$prefix/include/$h" ] || fail "header $h not installed under $prefix/include"
done
# The device interface and the argument rules stay between the library and
# the module: not installed, and no installed header includes them.
for h in flexsc/shim.h flexsc/thread_args.h; do
	[ ! -e "$prefix/include/$h" ] || fail "internal header $h installed"
done
for h in $(grep -rhoE '^#include <flexsc/[^>]+>' "$prefix/include" | sed 's/^#include <//; s/>$//' | sort -u); do
	[ -f "$prefix/include/$h" ] || fail "an installed header includes $h, which is not installed"
done
shared=$(find "$prefix" -name 'libflexsc.so' | head -n 1)
static=$(find "$prefix" -name 'libflexsc.a' | head -n 1)
[ -n "$shared" ] || fail "libflexsc.so not installed"
[ -n "$static" ] || fail "libflexsc.a not installed"
libdir=$(dirname "${shared:-$prefix/lib/x}")
config=$(find "$prefix" -name 'flexscConfig.cmake' | head -n 1)
[ -n "$config" ] || fail "flexscConfig.cmake not installed"
[ -n "$(find "$prefix" -name 'flexscConfigVersion.cmake')" ] || fail "flexscConfigVersion.cmake not installed"
[ -n "$(find "$prefix" -name 'flexscTargets.cmake')" ] || fail "flexscTargets.cmake not installed"
# The man pages, each in its section's directory, as in the source tree.
for page in "$here"/../../man/*.[0-9]; do
	name=$(basename "$page")
	installed=$(find "$prefix" -path "*/man/man${name##*.}/$name" | head -n 1)
	if [ -z "$installed" ]; then
		fail "man page $name not installed under $prefix/.../man/man${name##*.}"
	elif ! cmp -s "$page" "$installed"; then
		fail "man page $installed differs from man/$name"
	fi
done
# Nothing of the build tree leaks into the installed package files.
if grep -rl -- "$build" "$prefix" --include='*.cmake' --include='*.pc' >/dev/null 2>&1; then
	fail "installed package files mention the build tree: $(grep -rl -- "$build" "$prefix" --include='*.cmake' --include='*.pc' | tr '\n' ' ')"
fi
# The shared library exports the C API and the C++ fiber API (flexsc::fiber) only.
if [ -n "$shared" ] && command -v nm >/dev/null; then
	others=$(nm -D --defined-only "$shared" | awk '$2 ~ /^[TtDdBbRrVvWwi]$/ {print $3}' |
		grep -v '^flexsc_' | grep -v '^FLEXSC_' | grep -v '^_init$\|^_fini$' |
		grep -v '^_ZN6flexsc5fiber\|^_ZNK6flexsc5fiber\|^_ZT[VIS]N6flexsc5fiber' | head -n 5)
	[ -z "$others" ] || fail "libflexsc.so exports non-API symbols: $(echo $others)"
fi

# ---- 1. CMake package, shared -----------------------------------------------------
echo "== find_package(flexsc) + flexsc::flexsc"
if quiet "$cmake" -S "$here" -B "$tmp/cmake-shared" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release &&
	quiet "$cmake" --build "$tmp/cmake-shared"; then
	# No LD_LIBRARY_PATH: the imported location's RPATH must do.
	check_output "CMake consumer (flexsc::flexsc)" "$tmp/cmake-shared/consumer"
else
	fail "CMake consumer (flexsc::flexsc) does not configure or build"
fi

# ---- 2. pkg-config ----------------------------------------------------------------
echo "== pkg-config flexsc"
pc=$(find "$prefix" -name 'flexsc.pc' | head -n 1)
if [ -z "$pc" ]; then
	fail "flexsc.pc not installed"
elif ! command -v pkg-config >/dev/null; then
	fail "pkg-config is not installed"
else
	export PKG_CONFIG_PATH=$(dirname "$pc")
	incdir=$(pkg-config --variable=includedir flexsc)
	pclibdir=$(pkg-config --variable=libdir flexsc)
	case "$incdir" in
	"$prefix"/*) ;;
	*) fail "flexsc.pc: includedir=$incdir is not under the install prefix $prefix (prefix baked in at configure time?)" ;;
	esac
	case "$pclibdir" in
	"$prefix"/*) ;;
	*) fail "flexsc.pc: libdir=$pclibdir is not under the install prefix $prefix" ;;
	esac
	version=$(pkg-config --modversion flexsc)
	grep -q "PACKAGE_VERSION \"$version\"" "$(find "$prefix" -name 'flexscConfigVersion.cmake' | head -n 1)" ||
		fail "flexsc.pc version $version differs from the CMake package's"
	flags=$(pkg-config --cflags --libs flexsc)
	echo "   pkg-config --cflags --libs flexsc: $flags"
	# shellcheck disable=SC2086
	if quiet "$cc" -Wall -Wextra -Werror "$here/main.c" $flags -o "$tmp/consumer-pc"; then
		check_output "pkg-config consumer" "$tmp/consumer-pc" LD_LIBRARY_PATH="$pclibdir"
	else
		fail "pkg-config consumer does not build with: $cc main.c $flags"
	fi
	# The C++ fiber API, from the shared library.
	# shellcheck disable=SC2086
	if quiet "$cxx" -std=c++20 -Wall -Wextra -Werror "$here/fiber_main.cpp" $flags -o "$tmp/fiber-consumer-pc"; then
		expected="flexsc fiber consumer: ok" \
			check_output "pkg-config C++ fiber consumer" "$tmp/fiber-consumer-pc" LD_LIBRARY_PATH="$pclibdir"
	else
		fail "pkg-config C++ fiber consumer does not build with: $cxx fiber_main.cpp $flags"
	fi
	# Static linking as a pkg-config user does it: --static adds
	# Libs.private, which must name everything libflexsc.a needs (it holds
	# C++ objects).  -l:libflexsc.a picks the archive over the .so.
	sflags=$(pkg-config --static --cflags --libs flexsc)
	sflags=${sflags/-lflexsc/-l:libflexsc.a}
	echo "   pkg-config --static (archive): $sflags"
	# shellcheck disable=SC2086
	if quiet "$cc" "$here/main.c" $sflags -o "$tmp/consumer-pc-static"; then
		check_output "pkg-config --static consumer" "$tmp/consumer-pc-static"
	else
		fail "pkg-config --static consumer does not link with: $cc main.c $sflags (Libs.private incomplete?)"
	fi
fi

# ---- 3. CMake package, static ----------------------------------------------------
echo "== find_package(flexsc) + flexsc::flexsc_static"
if quiet "$cmake" -S "$here" -B "$tmp/cmake-static" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCONSUMER_STATIC=ON &&
	quiet "$cmake" --build "$tmp/cmake-static"; then
	check_output "CMake consumer (flexsc::flexsc_static)" "$tmp/cmake-static/consumer_static"
	if command -v ldd >/dev/null && ldd "$tmp/cmake-static/consumer_static" | grep -q libflexsc; then
		fail "consumer_static is linked against libflexsc.so"
	fi
else
	fail "CMake consumer (flexsc::flexsc_static) does not configure or build"
fi

echo
if [ ${#failures[@]} -ne 0 ]; then
	echo "${#failures[@]} install check(s) failed:"
	printf '  - %s\n' "${failures[@]}"
	exit 1
fi
echo "all install checks passed"
