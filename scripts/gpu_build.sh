#!/usr/bin/env bash
# Run on the GPU machine: unpacks .gpu-deps/debs (made by scripts/gpu_deps.sh) into
# .gpu-deps/root, then configures and builds ltri into build-gpu/ against that prefix, with the
# CUDA backend when nvcc is found. Usage: bash scripts/gpu_build.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/.gpu-deps/root
if [ ! -d "$root/usr" ]; then
  [ -d .gpu-deps/debs ] || { echo "error: .gpu-deps/debs missing: run scripts/gpu_deps.sh on a Debian machine and carry .gpu-deps" >&2; exit 1; }
  for f in .gpu-deps/debs/*.deb; do dpkg -x "$f" "$root"; done
fi
lib=$root/usr/lib/x86_64-linux-gnu
# Debian selects the BLAS through /etc/alternatives, which dpkg -x does not create: point at
# the pthread OpenBLAS directly.
export CMAKE_PREFIX_PATH=$root/usr
export PKG_CONFIG_PATH=$lib/pkgconfig:$root/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=
export LD_LIBRARY_PATH=$lib/openblas-pthread:$lib:${LD_LIBRARY_PATH:-}
export LIBRARY_PATH=$lib/openblas-pthread:$lib:${LIBRARY_PATH:-}
# The .pc files say prefix=/usr: rewrite them to the private prefix once.
for pc in "$lib"/pkgconfig/*.pc; do
  [ -f "$pc" ] && sed -i "s|^prefix=/usr\$|prefix=$root/usr|" "$pc"
done
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBLA_VENDOR=OpenBLAS -DBLAS_LIBRARIES="$lib/openblas-pthread/libopenblas.so" \
  -DCBLAS_INCLUDE_DIR="$root/usr/include/x86_64-linux-gnu/openblas-pthread" \
  -DCMAKE_BUILD_RPATH="$lib/openblas-pthread;$lib" "$@"
cmake --build build-gpu -j "$(nproc)"
echo "gpu_build: built build-gpu/ltri" >&2
