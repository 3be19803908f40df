#!/usr/bin/env bash
# Run on the GPU machine: unpacks .gpu-deps/debs (made by scripts/gpu_deps.sh) into
# .gpu-deps/root, then configures and builds ltri into build-gpu/ against that prefix, with the
# CUDA backend (-DLTRI_CUDA=ON) when nvcc is found (PATH or /usr/local/cuda/bin).
# Usage: bash scripts/gpu_build.sh [extra cmake args]
# Environment: LTRI_BUILD_TARGETS="ltri ltri_test_cuda" builds only those targets (default: all);
# CUDA_ARCH=90a overrides the GPU architecture (default: the first GPU's, else 90a = H100/H200;
# 90 is built as 90a, which adds the wgmma attention kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/.gpu-deps/root
# The prefix is rewritten with absolute paths (.pc files, symlinks): unpack again when the tree
# moved (a working tree copied to another machine lands under another path).
if [ "$(cat "$root/.unpacked-at" 2>/dev/null || true)" != "$root" ]; then
  [ -d .gpu-deps/debs ] || { echo "error: .gpu-deps/debs missing: run scripts/gpu_deps.sh on a Debian machine and carry .gpu-deps" >&2; exit 1; }
  rm -rf "$root"
  mkdir -p "$root"
  for f in .gpu-deps/debs/*.deb; do dpkg -x "$f" "$root"; done
  lib=$root/usr/lib/x86_64-linux-gnu
  # The .pc files say prefix=/usr: point them at the private prefix.
  for pc in "$lib"/pkgconfig/*.pc "$root"/usr/share/pkgconfig/*.pc "$lib"/openblas-pthread/pkgconfig/*.pc; do
    [ -f "$pc" ] && sed -i "s|^prefix=/usr\$|prefix=$root/usr|" "$pc"
  done
  # Absolute symlinks (zlib1g-dev's libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) dangle on
  # another distribution: point them into the prefix, else at the system's library of the same
  # soname major (libz.so.1), so CMake does not fall back to the non-PIC static archive.
  while IFS= read -r link; do
    target=$(readlink "$link")
    if [ -e "$root$target" ]; then
      ln -sfn "$root$target" "$link"
    else
      soname=$(echo "$target" | sed -E 's/(\.so\.[0-9]+).*/\1/')
      for candidate in "$soname" "/usr$soname"; do
        if [ -e "$candidate" ]; then ln -sfn "$candidate" "$link"; break; fi
      done
    fi
  done < <(find "$root" -type l -lname '/*')
  echo "$root" > "$root/.unpacked-at"
fi
lib=$root/usr/lib/x86_64-linux-gnu
# Debian selects the BLAS through /etc/alternatives, which dpkg -x does not create: point at
# the pthread OpenBLAS directly.
export CMAKE_PREFIX_PATH=$root/usr
export PKG_CONFIG_PATH=$lib/pkgconfig:$root/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=
export LD_LIBRARY_PATH=$lib/openblas-pthread:$lib:${LD_LIBRARY_PATH:-}
export LIBRARY_PATH=$lib/openblas-pthread:$lib:${LIBRARY_PATH:-}

cmake_args=()
# pkg-config: the machine's own, else the carried pkgconf (gpu_deps.sh downloads it).
if ! command -v pkg-config >/dev/null && [ -x "$root/usr/bin/pkgconf" ]; then
  cmake_args+=(-DPKG_CONFIG_EXECUTABLE="$root/usr/bin/pkgconf")
fi
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
if command -v nvcc >/dev/null; then
  arch=${CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ' || true)}
  # Compute capability 9.0 builds sm_90a, which adds the wgmma attention kernel.
  [ "${arch:-90}" = 90 ] && arch=90a
  cmake_args+=(-DLTRI_CUDA=ON -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}")
  echo "gpu_build: CUDA backend on, nvcc $(command -v nvcc), sm_${arch:-90}" >&2
else
  echo "gpu_build: no nvcc found: building without the CUDA backend" >&2
fi
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBLA_VENDOR=OpenBLAS -DBLAS_LIBRARIES="$lib/openblas-pthread/libopenblas.so" \
  -DCBLAS_INCLUDE_DIR="$root/usr/include/x86_64-linux-gnu/openblas-pthread" \
  -DCMAKE_BUILD_RPATH="$lib/openblas-pthread;$lib" "${cmake_args[@]}" "$@"
targets=()
for t in ${LTRI_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build build-gpu -j "$(nproc)" "${targets[@]}"
echo "gpu_build: built build-gpu (${LTRI_BUILD_TARGETS:-all targets})" >&2
