#!/usr/bin/env bash
# One prepared run on a GPU machine: train the 4B analog's weights, then the GPU checks of calibration, depth pruning and
# distillation. Each step has its own time limit; results land in $OUT (JSON lines + logs).
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-out/gpu}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)" | tee -a "$OUT/gpu.txt"
if [ "${SKIP_ANALOG:-0}" != 1 ]; then
  timeout 180 python3 tools/train_tiny.py tiny-qwen3-4b-analog --device cuda --train-only 2>&1 | grep -v -i warn | tail -4
  cp runs/tiny/tiny-qwen3-4b-analog.* "$OUT/" 2>/dev/null
fi
for s in bench/gpu_depth.py bench/gpu_distill.py; do
  [ -f "$s" ] || continue
  echo "== $s"; timeout ${CHECK_TIMEOUT:-120} python3 "$s" 2>&1 | grep -v -i warn | tee "$OUT/$(basename "$s" .py).log" | tail -15
done
ls -la "$OUT"
