#!/bin/bash
# One command for a fresh Debian 12 machine: install dependencies, build, run `probelab demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
./build/cli/probelab demo --out demo-out "$@"
