"""GPU check of knowledge distillation, one short script (about a minute on one H200; stops after 80 s of runs).

1. Peak memory of the chunked logit loss vs the unchunked one (forward + backward), bf16 logits [1, 4096, 151936].
2. One distillation step (3 steps timed) of a `qwen3-8b-shape` teacher (random weights, bf16) into its 24-layer depth-pruned
   student: full fine-tuning with bf16 weights, full fine-tuning with float32 master weights (bf16 autocast), and LoRA r=16;
   peak GPU memory of each. Prints a JSON line per part as it goes, then one JSON line with everything.
Usage: python bench/gpu_distill.py [--tiny]   (--tiny: tiny shapes on CPU, to check the logic)
"""

import argparse, copy, gc, json, statistics, sys, tempfile, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from transformers import AutoModelForCausalLM, TrainerCallback
from modelopt_nb.core import adapter, tiny_config
from modelopt_nb.distill import DistillConfig, distill
from modelopt_nb.losses import logit_loss


def gib(x):
    return round(x / 2**30, 3)


def peak_reset(dev):
    gc.collect()
    if dev == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak(dev):
    return torch.cuda.max_memory_allocated() if dev == 'cuda' else 0


def loss_memory(dev, n, v):
    out = {}
    s = torch.randn(1, n, v, device=dev, dtype=torch.bfloat16, requires_grad=True)
    t = torch.randn(1, n, v, device=dev, dtype=torch.bfloat16)
    for name, chunk in (('unchunked', None), ('chunked', 'auto')):
        s.grad = None
        peak_reset(dev)
        base = torch.cuda.memory_allocated() if dev == 'cuda' else 0
        t0 = time.perf_counter()
        logit_loss(s, t, temperature=2.0, chunk_size=chunk).backward()
        if dev == 'cuda':
            torch.cuda.synchronize()
        out[name] = dict(extra_gib=gib(peak(dev) - base), seconds=round(time.perf_counter() - t0, 4))
    out['ratio'] = round(out['chunked']['extra_gib'] / max(out['unchunked']['extra_gib'], 1e-9), 4)
    out['shape'] = [1, n, v]
    del s, t
    return out


class StepTimer(TrainerCallback):
    def __init__(self, dev):
        self.dev, self.t, self.times, self.trainable = dev, None, [], None

    def on_train_begin(self, args, state, control, model=None, **k):
        if model is not None:
            self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def on_step_begin(self, *a, **k):
        if self.dev == 'cuda':
            torch.cuda.synchronize()
        self.t = time.perf_counter()

    def on_step_end(self, *a, **k):
        if self.dev == 'cuda':
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.t)


def even_keep(n, k):
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--tiny', action='store_true')
    ap.add_argument('--seq', type=int, default=2048)
    ap.add_argument('--batch', type=int, default=1)
    a = ap.parse_args(argv)
    dev = 'cuda' if torch.cuda.is_available() and not a.tiny else 'cpu'
    res = dict(device=torch.cuda.get_device_name() if dev == 'cuda' else 'cpu', torch=torch.__version__)
    import transformers

    res['transformers'] = transformers.__version__
    t_start = time.time()
    res['loss_memory'] = loss_memory(dev, 4096, 151936) if not a.tiny else loss_memory(dev, 64, 1000)
    print(json.dumps(dict(partial='loss_memory', **res['loss_memory'])), flush=True)
    if a.tiny:
        cfg = tiny_config('qwen3', num_hidden_layers=6, vocab_size=1000, tie_word_embeddings=False)
        n_keep, seq = 4, 64
    else:
        try:
            from modelopt_nb.zoo import shape_config

            cfg = shape_config('qwen3-8b-shape')
        except Exception:
            from transformers import AutoConfig

            cfg = AutoConfig.for_model(
                'qwen3',
                num_hidden_layers=36,
                num_attention_heads=32,
                num_key_value_heads=8,
                head_dim=128,
                vocab_size=151936,
                max_position_embeddings=40960,
                hidden_size=4096,
                intermediate_size=12288,
                tie_word_embeddings=False,
            )
        n_keep, seq = 24, a.seq
    torch.manual_seed(0)
    with torch.device(dev):
        teacher = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
    L = adapter(teacher).num_layers
    kept = even_keep(L, n_keep)
    n_params = lambda m: sum(p.numel() for p in m.parameters())
    res['teacher'] = dict(
        layers=L, params=n_params(teacher), bytes=gib(sum(p.numel() * p.element_size() for p in teacher.parameters()))
    )
    data = torch.randint(0, cfg.vocab_size, (32 * a.batch, seq), generator=torch.Generator().manual_seed(0))
    runs = {
        'full, bf16 weights + AdamW (bf16 states), activation checkpointing': dict(
            dtype=torch.bfloat16, cfg=dict(gradient_checkpointing=True)
        ),
        'LoRA r=16 on all 7 projections, bf16 base, activation checkpointing': dict(
            dtype=torch.bfloat16, cfg=dict(lora_r=16, gradient_checkpointing=True)
        ),
        'full, fp32 master weights + bf16 autocast, activation checkpointing': dict(
            dtype=torch.float32, cfg=dict(bf16=True, gradient_checkpointing=True)
        ),
        'full, bf16 weights + AdamW, activation checkpointing, batch 8': dict(
            dtype=torch.bfloat16, batch=8, cfg=dict(gradient_checkpointing=True)
        ),
    }
    res['runs'] = {}
    for name, r in runs.items():
        rec = {}
        student = None
        try:
            peak_reset(dev)
            student = copy.deepcopy(teacher)
            adapter(student).set_layers(kept)
            student = student.to(r['dtype']).train()
            rec['student_params'] = n_params(student)
            rec['batch'] = r.get('batch', a.batch)
            timer = StepTimer(dev)
            with tempfile.TemporaryDirectory() as d:
                c = DistillConfig(
                    output_dir=d,
                    max_steps=3,
                    batch_size=r.get('batch', a.batch),
                    learning_rate=1e-5,
                    progress=False,
                    trainer_args=dict(use_cpu=(dev == 'cpu'), optim='adamw_torch'),
                    **r['cfg'],
                )
                student, hist = distill(teacher, student, data, c, callbacks=[timer])
            rec.update(
                peak_gib=gib(peak(dev)),
                step_s=round(statistics.median(timer.times[1:] or timer.times), 4),
                losses=[round(h['loss'], 4) for h in hist if 'loss' in h],
                tokens_per_step=r.get('batch', a.batch) * seq,
                trainable_params=timer.trainable,
            )
        except torch.OutOfMemoryError as e:
            rec.update(error='out of memory', detail=str(e)[:300], peak_gib=gib(peak(dev)))
        except Exception as e:
            rec.update(error=f'{type(e).__name__}: {str(e)[:300]}')
        res['runs'][name] = rec
        del student
        peak_reset(dev)
        print(
            json.dumps(dict(partial=name, **rec)), flush=True
        )  # progress, in case the caller's time limit cuts the run
        if time.time() - t_start > 240:
            res['note'] = 'stopped early to stay under the time limit'
            break
    if dev == 'cuda':
        res['gpu_total_gib'] = gib(torch.cuda.get_device_properties(0).total_memory)
    res['seconds'] = round(time.time() - t_start, 1)
    print(json.dumps(res))


if __name__ == '__main__':
    main()
