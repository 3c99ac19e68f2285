"""Engine backends (modelopt_nb.benchmark, onnxruntime against eager): depth pruning's speed-up under ONNX Runtime on this CPU,
ONNX Runtime against PyTorch eager on the same model and workload, and the harness's own overhead over a hand-written loop.
Ratios are measured in one run (the machine may be shared: each pair is timed back to back, medians of several requests).
- tiny-qwen3-36l against its 24-layer depth-pruned copy, batch 1 (goal: >= 1.4x output tokens/s);
- smollm2-135m against its 20-layer copy, batch 1, against the ideal ratio of weight bytes read per token (goal: >= 0.97);
- onnxruntime / eager output tokens/s at batch 1 and 8 on tiny-qwen3-36l;
- benchmark() total time / a hand-written loop of the same OnnxLM.generate calls (goal: <= 1.05).
"""

import statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _prune(model, tok, n):
    from modelopt_nb.calibrate import calibrate, calibration_blocks
    from modelopt_nb.depth import prune_depth

    return prune_depth(model, n, calibrate(model, calibration_blocks(tok, model, 16, 256), progress=False), progress=False)[0]


def _bytes_per_token(model):
    "Weight bytes a decode step reads: every parameter but the input embedding, of which it reads one row."
    emb, out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    return total if emb is out else total - emb.numel() * emb.element_size()


def _rec(case, metric, value, unit, **kw):
    return dict(case=case, metric=metric, value=value, unit=unit, **kw)


def _pair(models, w, backend='onnxruntime'):
    from modelopt_nb.benchmark import benchmark

    res = benchmark(models, w, backends=(backend,), progress=False)
    return {(r.model, r.batch): r for r in res}


def _depth_ratio(name, n, w, goal_ideal=None, goal=None):
    from modelopt_nb.zoo import load_pretrained

    big, tok = load_pretrained(name)
    small = _prune(big, tok, n)
    by = _pair({name: big, f'{n} layers': small}, w)
    q = by[f'{n} layers', 1].output_tokens_per_s / by[name, 1].output_tokens_per_s
    out = [_rec(f'{m}, onnxruntime cpu fp32, batch 1', 'output tokens/s', by[m, 1].output_tokens_per_s, 'tokens/s')
           for m in (name, f'{n} layers')]
    out.append(_rec(f'{name} pruned to {n} layers, batch 1', 'onnxruntime output tokens/s ratio', q, 'x', ratio=q,
                    ratio_of=f'median-of-{w.repeats} output tokens/s, one run', goal=goal or ''))
    if goal_ideal:
        ideal = _bytes_per_token(big) / _bytes_per_token(small)
        out.append(_rec(f'{name} pruned to {n} layers, batch 1', 'speed-up / ideal (weight bytes per token)', q / ideal,
                        'x', ratio=q / ideal, ratio_of=f'{q:.3f} measured / {ideal:.3f} ideal, one run', goal=goal_ideal))
    return out, big


def _ort_vs_eager(model, name, w):
    from modelopt_nb.benchmark import benchmark

    res = benchmark({name: model}, w, backends=('eager', 'onnxruntime'), progress=False)
    by = {(r.backend, r.batch): r.output_tokens_per_s for r in res}
    out = []
    for b in w.batch_sizes:
        q = by['onnxruntime', b] / by['eager', b]
        out.append(_rec(f'{name}, cpu fp32, batch {b}', 'onnxruntime / eager output tokens/s', q, 'x', ratio=q,
                        ratio_of=f'median-of-{w.repeats} output tokens/s, one run'))
    return out


def _overhead(model, w):
    "benchmark()'s median total over the median of a hand loop timing the same OnnxLM.generate calls (interleaved)."
    from modelopt_nb.benchmark import benchmark
    from modelopt_nb.export import OnnxLM, cached_onnx

    lm, ids = OnnxLM(cached_onnx(model)), w.prompts(model.config.vocab_size, 1)
    hand, harness = [], []
    for _ in range(3):
        lm.generate(ids, w.output_len)
        for _ in range(w.repeats):
            t0 = time.perf_counter(); lm.generate(ids, w.output_len); hand.append(time.perf_counter() - t0)
        harness.append(benchmark(model, w, backends=('onnxruntime',), progress=False)[0].total_s)
    q = statistics.median(harness) / statistics.median(hand)
    return [_rec('tiny-qwen3-36l, onnxruntime, batch 1', 'benchmark() / hand loop total time', q, 'x', ratio=q,
                 ratio_of='median request time, interleaved, one run', goal='<= 1.05')]


def run(quick=False):
    from modelopt_nb.benchmark import Workload

    w1 = Workload(batch_sizes=(1,), prompt_len=128, output_len=32 if quick else 64, repeats=3 if quick else 5)
    out, big = _depth_ratio('tiny-qwen3-36l', 24, w1, goal='>= 1.4')
    out += _ort_vs_eager(big, 'tiny-qwen3-36l', Workload(batch_sizes=(1, 8), prompt_len=128, output_len=w1.output_len,
                                                          repeats=w1.repeats))
    out += _overhead(big, w1)
    if not quick:
        try:
            more, _ = _depth_ratio('smollm2-135m', 20, Workload(batch_sizes=(1,), prompt_len=128, output_len=32, repeats=3),
                                   goal_ideal='>= 0.97')
            out += more
        except ImportError as e:  # the 'real' extra is not installed
            out.append(_rec('smollm2-135m', 'skipped', str(e), ''))
    return out


if __name__ == '__main__':
    for r in run(quick='--quick' in sys.argv):
        print(r)
