#!/bin/bash
# Configure and build probelab into build/: the default build (RelWithDebInfo, portable: PL_NATIVE=OFF,
# SIMD kernels chosen at run time). Extra args go to cmake, e.g. -DPL_NATIVE=ON or -DCMAKE_BUILD_TYPE=Release.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_NATIVE=OFF "$@" >/dev/null
cmake --build build -j"$(nproc)"
