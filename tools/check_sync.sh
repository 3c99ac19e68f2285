#!/usr/bin/env bash
# Fails when nbdev_export, nbdev_clean or the README generator would change tracked files: notebooks, library and README disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
snap() { git status --porcelain --untracked-files=all -- modelopt_nb nbs README.md; git diff -- modelopt_nb nbs README.md | md5sum; }
before=$(snap)
.venv/bin/nbdev_export
.venv/bin/nbdev_clean
.venv/bin/python tools/make_readme.py
after=$(snap)
if [ "$before" != "$after" ]; then
  echo "FAIL: nbdev_export / nbdev_clean / tools/make_readme.py changed these files (run 'make sync' and commit):" >&2
  diff <(echo "$before") <(echo "$after") | grep '^>' | sed 's/^> /  /' >&2 || true
  exit 1
fi
echo "sync: library, notebooks and README agree"
