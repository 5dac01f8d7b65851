#!/usr/bin/env bash
# Installs the external references the differential tests compare against, each pinned
# by its package-lock.json: transformers.js's tokenizers and @huggingface/jinja
# (runtime/tokenizer, runtime/tokenizer/chattemplate), ajv with ajv-formats (the JSON
# Schema validator for constrained decoding: runtime/grammar, runtime/engine) and the
# official openai npm client (server). Without them those tests skip and say which
# command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "install-test-deps: npm not found; the Node.js reference tests will skip" >&2
  exit 0
fi
for dir in runtime/tokenizer/testdata/node runtime/tokenizer/chattemplate/testdata/node runtime/grammar/testdata/node server/testdata/node; do
  [ -f "$dir/package-lock.json" ] || continue
  echo "npm ci --prefix $dir"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
done
