#!/bin/bash
# One command for a fresh Debian 12 machine: install dependencies, build, and run every test,
# first in the normal build, then the C tests again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
(cd build && ctest -j"$(nproc)" --output-on-failure --timeout 900)
if [[ "${PL_SKIP_SANITIZE:-0}" != 1 ]]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPL_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$(nproc)"
  # Script tests drive the binary with Python references; the normal build already ran them.
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest -j"$(nproc)" --output-on-failure --timeout 900 -E '^py_')
fi
