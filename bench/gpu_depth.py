"""GPU check of calibration and depth pruning: `calibrate` + `prune_depth` on qwen3-8b-shape (random weights, Qwen3-8B's shapes) in bfloat16.

    python bench/gpu_depth.py                 # 64 samples x 2048 tokens, batch 8, on cuda (needs a GPU; ~1-2 minutes on an H200)
    python bench/gpu_depth.py --tiny          # the same logic on a tiny 36-layer Qwen3 (CPU is fine): a dry run

Prints one JSON line: wall times and tokens/s of a plain forward (logits included, no cache), of `calibrate` and of the pruned
model's forward; the calibrate / plain throughput ratio; peak GPU memory of each pass (max_memory_allocated, reset before each);
the layers `prune_depth` removed by block influence (scattered) and by angular distance (contiguous).
"""

import argparse, json, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--tiny', action='store_true', help='a tiny 36-layer Qwen3 instead of qwen3-8b-shape (a dry run)')
    ap.add_argument('--samples', type=int, default=None)
    ap.add_argument('--seq-len', type=int, default=None)
    ap.add_argument('--batch-size', type=int, default=None)
    ap.add_argument('--num-layers', type=int, default=24)
    a = ap.parse_args(argv)
    import torch
    from modelopt_nb.core import tiny_model, describe
    from modelopt_nb.calibrate import calibrate
    from modelopt_nb.depth import prune_depth

    cuda = torch.cuda.is_available()
    if not cuda and not a.tiny:
        print(json.dumps(dict(skipped='no CUDA device; run with --tiny for a CPU dry run')))
        return 0
    dev = 'cuda' if cuda else 'cpu'
    samples = a.samples or (4 if a.tiny else 64)
    seq_len = a.seq_len or (64 if a.tiny else 2048)
    bs = a.batch_size or (2 if a.tiny else 8)
    t0 = time.time()
    if a.tiny:
        model = tiny_model(
            'qwen3',
            num_hidden_layers=36,
            hidden_size=128,
            intermediate_size=384,
            num_attention_heads=8,
            num_key_value_heads=2,
            head_dim=16,
            vocab_size=1024,
        ).to(device=dev, dtype=torch.bfloat16)
        name = 'tiny 36-layer qwen3'
    else:
        from modelopt_nb.zoo import load_pretrained

        model, _ = load_pretrained('qwen3-8b-shape', dtype='bf16', device=dev)
        name = 'qwen3-8b-shape'
    model.eval()
    t_load = time.time() - t0
    V = model.config.vocab_size
    ids = torch.randint(0, V, (samples, seq_len), generator=torch.Generator().manual_seed(0))
    ntok = ids.numel()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def peak_reset():
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak():
        return torch.cuda.max_memory_allocated() / 2**30 if cuda else None

    @torch.no_grad()
    def forward(m):
        for i in range(0, samples, bs):
            m(input_ids=ids[i : i + bs].to(dev), use_cache=False)

    def timed(f):
        peak_reset()
        sync()
        t = time.perf_counter()
        r = f()
        sync()
        return r, time.perf_counter() - t, peak()

    with torch.no_grad():
        model(input_ids=ids[:1, :128].to(dev), use_cache=False)  # warm up kernels
    calibrate(model, ids[:1, :128], progress=False)
    _, t_plain, m_plain = timed(lambda: forward(model))
    cal, t_cal, m_cal = timed(lambda: calibrate(model, ids, batch_size=bs, progress=False))
    _, t_plain2, _ = timed(lambda: forward(model))  # again, to bracket calibrate
    t_plain = min(t_plain, t_plain2)
    cal_mc, t_cal_mc, m_cal_mc = timed(lambda: calibrate(model, ids, batch_size=bs, angular="mean-cos", progress=False))

    def rho(x, y):  # Spearman rank correlation (no ties in practice)
        ok = torch.isfinite(x) & torch.isfinite(y)
        r = lambda v: v[ok].argsort().argsort().double()
        return round(float(torch.corrcoef(torch.stack([r(x), r(y)]))[0, 1]), 4)

    ok = bool(torch.isfinite(cal.bi).all() and torch.isfinite(cal.mlp_act).all() and (cal.bi > 0).all())
    k = model.config.num_hidden_layers - a.num_layers
    from modelopt_nb.importance import select_layers, angular_scores  # (a plan only: no copy of the model)

    kept_ang = (
        select_layers(angular_scores(cal, 1), a.num_layers, 'contiguous', block_scores=angular_scores(cal, k))
        if k <= cal.angular_max_block
        else None
    )
    weights_gib = describe(model).bytes / 2**30
    (pruned, plan), t_prune, _ = timed(
        lambda: prune_depth(model, a.num_layers, cal, 'bi', 'scattered', inplace=True, progress=False)
    )
    _, t_pruned, m_pruned = timed(lambda: forward(pruned))
    out = dict(
        model=name,
        device=torch.cuda.get_device_name() if cuda else 'cpu',
        dtype='bfloat16',
        samples=samples,
        seq_len=seq_len,
        batch_size=bs,
        tokens=ntok,
        load_s=round(t_load, 1),
        weights_gib=round(weights_gib, 2),
        plain_forward_s=round(t_plain, 3),
        plain_tokens_per_s=round(ntok / t_plain),
        plain_peak_gib=m_plain and round(m_plain, 2),
        calibrate_s=round(t_cal, 3),
        calibrate_tokens_per_s=round(ntok / t_cal),
        calibrate_peak_gib=m_cal and round(m_cal, 2),
        calibrate_over_plain_throughput=round(t_plain / t_cal, 3),
        calibrate_over_plain_peak_memory=m_cal and round(m_cal / m_plain, 3),
        calibrate_mean_cos_s=round(t_cal_mc, 3),
        calibrate_mean_cos_over_plain_throughput=round(t_plain / t_cal_mc, 3),
        calibrate_mean_cos_peak_gib=m_cal_mc and round(m_cal_mc, 2),
        bi_max_abs_diff_modes=float((cal.bi - cal_mc.bi).abs().max()),
        angular_spearman_per_token_vs_mean_cos={n: rho(cal.angular[n - 1], cal_mc.angular[n - 1]) for n in (1, 4, 12)},
        calibration_finite=ok,
        prune_depth_s=round(t_prune, 3),
        pruned_forward_s=round(t_pruned, 3),
        pruned_tokens_per_s=round(ntok / t_pruned),
        pruned_peak_gib=m_pruned and round(m_pruned, 2),
        pruned_over_plain_throughput=round(t_plain / t_pruned, 3),
        layers_after=pruned.config.num_hidden_layers,
        removed_bi_scattered=plan.removed,
        removed_angular_contiguous=kept_ang and [i for i in range(len(cal.bi)) if i not in kept_ang],
        bi=[round(float(x), 5) for x in cal.bi],
        total_s=round(time.time() - t0, 1),
    )
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
