#!/usr/bin/env bash
# Run on the development machine (Debian, apt reachable): downloads the Debian packages the GPU
# machine lacks (it has g++, cmake, ninja and the CUDA toolkit, but no OpenBLAS, PCRE2, json,
# CLI11, GoogleTest or libpng headers, maybe no pkg-config, and no network) into .gpu-deps/debs/,
# git-ignored. The folder travels to the GPU machine with the working tree (device tool: carry [".gpu-deps"]),
# where scripts/gpu_build.sh unpacks it into a private prefix; nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  nlohmann-json3-dev libcli11-dev libgtest-dev libpng-dev libpng16-16 zlib1g-dev
  pkgconf-bin libpkgconf3)
mkdir -p .gpu-deps/debs
grep -qx '/.gpu-deps/' .git/info/exclude 2>/dev/null || echo '/.gpu-deps/' >> .git/info/exclude
(cd .gpu-deps/debs && apt-get download "${PACKAGES[@]}")
du -sh .gpu-deps/debs
