#!/bin/bash
# Install the Debian 12 packages probelab needs. Usage: scripts/install-deps.sh [--test]
# --test adds what the test suite needs (independent references in Python, Xvfb, ImageMagick, and
# clang with libFuzzer for the fuzz harnesses).
set -euo pipefail
build=(build-essential cmake pkg-config git ca-certificates
       libopenblas-dev libsqlite3-dev libjansson-dev libpcre2-dev libcairo2-dev libgtk-4-dev)
test=(libcmocka-dev python3 python3-numpy python3-torch python3-sklearn python3-venv python3-pip
      sqlite3 xvfb xauth imagemagick clang libclang-rt-14-dev)
pkgs=("${build[@]}")
[[ "${1:-}" == "--test" ]] && pkgs+=("${test[@]}")
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if (( ${#missing[@]} )); then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
