#!/usr/bin/env bash
# test_shim_qemu: the device's own tests and the library's suites on the
# `shim` backend, in the QEMU guest (guest.sh), then a check that the guest
# ran every test the host lists for each suite, none skipped.
#
#   run_suites.sh <workdir> <kernel-shim dir> <test_shim> <suite> [<suite> ...]
#
# Exit status: guest.sh's (77 = SKIP, with the reason), or 1 when a suite's
# tests in the guest differ from the host's list.
set -uo pipefail
work=$1 shim=$2 device_tests=$3
shift 3
mkdir -p "$work"
args=("$device_tests::--gtest_brief=1" FLEXSC_BACKEND=shim FLEXSC_TEST_SCALE=0.2)
for suite in "$@"; do
  name=$(basename "$suite")
  args+=("$suite::--gtest_brief=1 --gtest_output=json:/tmp/$name.json" "FETCH=/tmp/$name.json")
done
bash "$(dirname "$0")/guest.sh" "$work" "$shim" "${args[@]}"
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"

status=0
for suite in "$@"; do
  name=$(basename "$suite")
  "$suite" --gtest_list_tests >"$work/$name.host-list" || { echo "FAIL: $name --gtest_list_tests"; status=1; continue; }
  python3 - "$work/$name.host-list" "$work/$name.json" "$name" <<'PY' || status=1
import json, sys
listing, report, name = sys.argv[1:]
host, suite = set(), ""
for line in open(listing):
    if not line.strip():
        continue
    if not line.startswith(" "):
        suite = line.split("#")[0].strip()
    else:
        host.add(suite + line.split("#")[0].strip())
try:
    data = json.load(open(report))
except (OSError, ValueError) as e:
    sys.exit(f"FAIL: {name}: no test report from the guest ({e})")
ran, skipped = set(), []
for s in data.get("testsuites", []):
    for t in s.get("testsuite", []):
        full = s["name"] + "." + t["name"]
        if t.get("result") == "SKIPPED":
            skipped.append(full)
        elif t.get("status") == "RUN":
            ran.add(full)
missing = sorted(host - ran - set(skipped))
extra = sorted(ran - host)
for what, names in (("not run in the guest", missing), ("skipped in the guest", skipped), ("not on the host", extra)):
    for n in names:
        print(f"FAIL: {name}: {n}: {what}")
if missing or skipped or extra:
    sys.exit(1)
print(f"{name}: the guest ran the host's {len(host)} tests")
PY
done
exit "$status"
