#!/bin/bash
# One command for a fresh Debian 12 machine: install dependencies, build, and run every test in the
# default build (RelWithDebInfo, portable); then the C tests again in the other builds a user may
# choose: Release (-O3), Release with PL_NATIVE=ON (-march=native), and Debug under
# AddressSanitizer + UBSan (there the Python-driven tests too, so the binary they drive is
# sanitized as well); then every fuzz harness for PL_FUZZ_SECONDS (default 30) each, built
# with clang (scripts/fuzz.sh). PL_SKIP_RELEASE=1 / PL_SKIP_SANITIZE=1 / PL_SKIP_FUZZ=1 skip those.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
(cd build && ctest -j"$(nproc)" --output-on-failure --timeout 900)

# Configure and build DIR with the given cmake options, then run its tests: the C tests only
# (EXCLUDE '^py_': script tests compare the binary with Python references, which the optimization
# level does not change), or all of them (EXCLUDE '').
tests_in() {
  local dir=$1 exclude=$2; shift 2
  echo "== tests in $dir ($*)${exclude:+, excluding $exclude}"
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
  (cd "$dir" && ctest -j"$(nproc)" --output-on-failure --timeout 900 ${exclude:+-E "$exclude"})
}
if [[ "${PL_SKIP_RELEASE:-0}" != 1 ]]; then
  tests_in build-release '^py_' -DCMAKE_BUILD_TYPE=Release -DPL_NATIVE=OFF
  tests_in build-native '^py_' -DCMAKE_BUILD_TYPE=Release -DPL_NATIVE=ON
fi
if [[ "${PL_SKIP_SANITIZE:-0}" != 1 ]]; then
  ASAN_OPTIONS=detect_leaks=1 tests_in build-asan '' -DCMAKE_BUILD_TYPE=Debug -DPL_SANITIZE=ON
fi
if [[ "${PL_SKIP_FUZZ:-0}" != 1 ]]; then
  echo "== fuzz harnesses, ${PL_FUZZ_SECONDS:-30} s each (scripts/fuzz.sh)"
  scripts/fuzz.sh --seconds "${PL_FUZZ_SECONDS:-30}" --seed 1
fi
