#!/usr/bin/env bash
# Configures a Release build without tests and examples (build/release, or
# FLEXSC_BUILD_DIR) and builds the given targets: the benchmark scripts' build.
#   bash scripts/release-build.sh <target>...
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FLEXSC_BUILD_DIR:-build/release}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLEXSC_TESTS=OFF -DFLEXSC_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "$@"
