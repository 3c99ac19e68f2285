"""Distillation benchmarks: step cost against plain training, and the chunked logit loss's peak memory.

1. Step cost: one distillation step (DistillTrainer.compute_loss + backward: teacher forward, student forward, chunked logit loss)
   over the baseline teacher forward + student forward/backward with the plain LM loss, same batch, same run.
   Goal <= 1.15 on tiny-qwen3-36l and on smollm2-135m (24 of 36 / 20 of 30 layers kept). Timed as process CPU time on one
   thread (the machine is shared: wall time swings with other jobs, CPU time does not). Where the zoo weights are not
   installed, random weights of the same shape are timed (the cost does not depend on the values).
2. Peak memory of the chunked logit loss (forward + backward) over the unchunked one, synthetic bf16 logits, V = 151,936.
   Measured as the peak RSS growth of a fresh process; goal <= 0.25. (bench/gpu_distill.py measures it at 4,096 tokens on a GPU.)
"""

import copy, json, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {  # fallbacks with the published shapes, random weights
    'tiny-qwen3-36l': (
        'qwen3',
        dict(
            num_hidden_layers=36,
            hidden_size=128,
            intermediate_size=384,
            num_attention_heads=8,
            num_key_value_heads=2,
            head_dim=16,
            vocab_size=6144,
            tie_word_embeddings=True,
        ),
    ),
    'smollm2-135m': (
        'llama',
        dict(
            num_hidden_layers=30,
            hidden_size=576,
            intermediate_size=1536,
            num_attention_heads=9,
            num_key_value_heads=3,
            head_dim=64,
            vocab_size=49152,
            tie_word_embeddings=True,
        ),
    ),
}


def load(name):
    "The zoo model if it loads, else random weights of its shape; returns (model, note)."
    try:
        from modelopt_nb.zoo import load_pretrained

        return load_pretrained(name)[0].eval(), 'zoo weights'
    except Exception as e:
        from modelopt_nb.core import tiny_model

        mt, kw = SHAPES[name]
        return tiny_model(mt, **kw), f'random weights, same shape ({type(e).__name__})'


def even_keep(n, k):
    "k of n layers, first and last kept, the rest evenly spaced."
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def step_cost(name, keep, batch, seq, reps, features=False):
    from modelopt_nb.core import adapter
    from modelopt_nb.distill import DistillConfig, DistillModule, DistillTrainer, default_layer_map, training_arguments

    torch.manual_seed(0)
    teacher, note = load(name)
    student = copy.deepcopy(teacher)
    adapter(student).set_layers(even_keep(adapter(teacher).num_layers, keep))
    student.train()
    V = adapter(teacher).vocab_size
    ids = torch.randint(0, V, (batch, seq), generator=torch.Generator().manual_seed(0))
    lm = default_layer_map(teacher, student, even_keep(adapter(teacher).num_layers, keep)) if features else None
    with tempfile.TemporaryDirectory() as d:
        cfg = DistillConfig(output_dir=d, features=features, progress=False, trainer_args=dict(use_cpu=True))
        module = DistillModule(student, lm)
        tr = DistillTrainer(model=module, args=training_arguments(cfg, 1), teacher=teacher, distill_config=cfg)
        module.train()

        def base():
            with torch.no_grad():
                teacher(input_ids=ids, use_cache=False)
            student(input_ids=ids, labels=ids, use_cache=False).loss.backward()

        def ours():
            tr.compute_loss(module, {'input_ids': ids}).backward()

        tb, to = [], []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for f, acc in ((base, None), (ours, None)):
                f()
                student.zero_grad(set_to_none=True)  # warm up
            for _ in range(reps):
                for f, acc in ((base, tb), (ours, to)):
                    t0 = time.process_time()
                    f()
                    acc.append(time.process_time() - t0)
                    student.zero_grad(set_to_none=True)
        finally:
            torch.set_num_threads(threads)
        module._cap.remove()
    mb, mo = statistics.median(tb), statistics.median(to)
    case = f"{name} → {keep} layers{' + features' if features else ''}, {batch}×{seq} tokens ({note})"
    return [
        dict(
            case=case,
            metric='baseline step (teacher fwd + student fwd/bwd, LM loss), CPU time, 1 thread',
            value=mb,
            unit='s',
        ),
        dict(
            case=case,
            metric='distillation step, CPU time, 1 thread',
            value=mo,
            unit='s',
            ratio=mo / mb,
            ratio_of=f'distillation step / baseline step, median of {reps}, one run',
            goal='<= 1.15',
        ),
    ]


MEM_SNIPPET = r'''
import json, resource, sys, time, torch
sys.path.insert(0, {root!r})
from modelopt_nb.losses import logit_loss
torch.set_num_threads(2)
N, V, chunk = {n}, {v}, {chunk!r}
s = torch.empty(1, N, V, dtype=torch.bfloat16); s.normal_(); s.requires_grad_()
t = torch.empty(1, N, V, dtype=torch.bfloat16); t.normal_()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
logit_loss(s, t, temperature=2.0, chunk_size=chunk).backward()
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(extra_bytes=(peak - base)*1024, seconds=dt, grad_bytes=s.grad.numel()*s.grad.element_size())))
'''


def loss_memory(n, v=151_936, chunk='auto'):
    r = {}
    for name, c in (('unchunked', None), ('chunked', chunk)):
        out = subprocess.run(
            [sys.executable, '-c', MEM_SNIPPET.format(root=str(ROOT), n=n, v=v, chunk=c)],
            capture_output=True,
            text=True,
            check=True,
        )
        r[name] = json.loads(out.stdout.strip().splitlines()[-1])
    case = f'KL loss fwd+bwd, bf16 logits [1, {n:,}, {v:,}], T=2, chunk {chunk} (2**23 logits)'
    u, c = r['unchunked'], r['chunked']
    return [
        dict(case=case, metric='peak extra memory, unchunked', value=u['extra_bytes'] / 2**20, unit='MiB'),
        dict(
            case=case,
            metric='peak extra memory, chunked',
            value=c['extra_bytes'] / 2**20,
            unit='MiB',
            ratio=c['extra_bytes'] / u['extra_bytes'],
            ratio_of='chunked / unchunked peak RSS growth, one run',
            goal='<= 0.25',
        ),
        dict(
            case=case,
            metric='of which the student-logit gradient (needed by any training step)',
            value=c['grad_bytes'] / 2**20,
            unit='MiB',
        ),
        dict(case=case, metric='loss time, unchunked', value=u['seconds'], unit='s'),
        dict(
            case=case,
            metric='loss time, chunked',
            value=c['seconds'],
            unit='s',
            ratio=c['seconds'] / u['seconds'],
            ratio_of='chunked / unchunked time, one run',
        ),
    ]


def run(quick: bool) -> list[dict]:
    reps = 3 if quick else 5
    recs = []
    recs += loss_memory(1024)
    recs += step_cost('tiny-qwen3-36l', 24, 4, 256, reps)
    recs += step_cost('tiny-qwen3-36l', 24, 4, 256, reps, features=True)
    recs += step_cost('smollm2-135m', 20, 2, 256, max(3, reps - 2))
    return recs


if __name__ == '__main__':
    for r in run('--quick' in sys.argv):
        print(r)
