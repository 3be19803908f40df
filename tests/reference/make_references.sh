#!/usr/bin/env bash
# Regenerates the committed reference outputs on a machine with python3 + torch + transformers
# (the GPU machine; the scripts compute on its CPU in f32). Writes a tarball of the fixtures to
# ${OUT:-/tmp/ltri-references}; unpack it at the repository root to update tests/fixtures/.
#   bash tests/reference/make_references.sh [tiny] [tokenizer]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/ltri-references}
mkdir -p "$out"
jobs=("$@")
[ ${#jobs[@]} -gt 0 ] || jobs=(tiny tokenizer)
python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'
paths=()
for job in "${jobs[@]}"; do
  case "$job" in
    tiny) python3 tests/reference/make_tiny_models.py tests/fixtures/tiny; paths+=(tests/fixtures/tiny) ;;
    tokenizer) python3 tests/reference/make_tokenizer_goldens.py; paths+=(tests/fixtures/tokenizer) ;;
    *) echo "unknown job '$job' (tiny, tokenizer)" >&2; exit 2 ;;
  esac
done
tar -czf "$out/references.tar.gz" "${paths[@]}"
ls -la "$out"
