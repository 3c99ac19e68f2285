#!/usr/bin/env bash
# Fails when nbdev_export, nbdev_clean or the README generator would change tracked files: notebooks, library and README disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
# each changed or untracked file with a hash of its content, so a file already modified before the check is named too
snap() { git status --porcelain --untracked-files=all -- modelopt_nb nbs README.md | cut -c4- | sort |
         while read -r f; do if [ -e "$f" ]; then echo "$f $(md5sum < "$f" | cut -c1-32)"; else echo "$f deleted"; fi; done; }
before=$(snap)
.venv/bin/nbdev_export
.venv/bin/nbdev_clean
.venv/bin/python tools/make_readme.py
after=$(snap)
if [ "$before" != "$after" ]; then
  echo "FAIL: nbdev_export / nbdev_clean / tools/make_readme.py changed these files (run 'make sync' and commit):" >&2
  diff <(echo "$before") <(echo "$after") | awk '/^[<>] /{print "  " $2}' | sort -u >&2 || true
  echo "  (a notebook saved by a JupyterLab not started with 'make lab' keeps execution counts and metadata)" >&2
  exit 1
fi
echo "sync: library, notebooks and README agree"
