#!/usr/bin/env bash
# One prepared run on a GPU machine: train the teacher (tiny-qwen3-36l) and the 4B analog (tiny-qwen3-4b-analog) with
# recipe v2 of tools/train_tiny.py, both at once on the one GPU (each is too small to fill it). Needs the tokenized
# pretraining stream built here first (`python tools/train_tiny.py tokens`), carried with the manifest:
#   carry: .corpus/pretrain/manifest.json, runs/tiny/pretrain-tokens-*.npy
# Results (weights, training JSON, logs; the resumable state when the time limit stops a run) land in $OUT; finalize them
# here with `python tools/train_tiny.py finalize`. A stopped run continues with RESUME=1 (carry runs/tiny/*.state).
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-out/gpu}; mkdir -p "$OUT"
LIMIT=${LIMIT:-540}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)" | tee -a "$OUT/gpu.txt"
extra=""; [ "${RESUME:-0}" = 1 ] && extra="--resume"
for m in tiny-qwen3-36l tiny-qwen3-4b-analog; do
  timeout "$LIMIT" python3 tools/train_tiny.py "$m" --recipe v2 --device cuda --train-only $extra > "$OUT/$m.log" 2>&1 &
done
wait
for m in tiny-qwen3-36l tiny-qwen3-4b-analog; do
  tail -3 "$OUT/$m.log"
  cp runs/tiny/$m.safetensors runs/tiny/$m.json "$OUT/" 2>/dev/null
  [ -d runs/tiny/$m.state ] && cp -r runs/tiny/$m.state "$OUT/"
done
ls -la "$OUT"
