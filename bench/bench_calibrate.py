"""Calibration against a plain forward pass over the same batches: throughput and peak memory.

Goals: `calibrate` throughput >= 0.9 x a plain forward (`model(input_ids, use_cache=False)`, logits included), and its peak memory
<= 1.2 x the plain forward's. The calibrate pass uses its compiled CPU kernels (numba); the same pass without them
(`kernels='torch'`) is reported beside it. Loading numba and the kernels is a one-time cost per process (about 150 MiB of resident
memory here, mostly LLVM): it is measured and reported on its own, and the peak of the pass is taken after it. Throughput: interleaved rounds in one process; the ratio is the median of the per-round ratios
(each calibrate pass against the plain pass just before it), which a machine whose speed drifts disturbs least. Peak memory: each mode in a
fresh subprocess, the resident-set high-water mark (VmHWM, reset just before the pass) above the resident set just before it.
Also reported for information: the ratio to a forward of the decoder stack alone (`model.model`), which is what calibrate runs.
"""

import json, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ('tiny-qwen3-36l', 'smollm2-135m')


def _setup(name, samples, seq_len):
    from modelopt_nb.zoo import load_pretrained
    from modelopt_nb.calibrate import calibration_blocks

    model, tok = load_pretrained(name, dtype='fp32')
    return model, calibration_blocks(tok, model, samples, seq_len)


def _modes(model, blocks, batch_size):
    import torch
    from modelopt_nb.calibrate import calibrate

    def plain():
        with torch.no_grad():
            for b in blocks.batches(batch_size):
                model(input_ids=b['input_ids'], use_cache=False)

    def stack():
        with torch.no_grad():
            for b in blocks.batches(batch_size):
                model.model(input_ids=b['input_ids'], use_cache=False)

    # (in this order: each calibrate pass runs right after a plain pass, to which it is compared; then the same without the compiled
    # CPU kernels, for comparison)
    return dict(
        stack=stack,
        plain=plain,
        calibrate=lambda: calibrate(model, blocks, batch_size=batch_size, progress=False),
        calibrate_torch=lambda: calibrate(model, blocks, batch_size=batch_size, progress=False, kernels='torch'),
    )


def _peak_child(name, mode, samples, seq_len, batch_size):
    "Run in a subprocess: peak RSS above the RSS before one pass of `mode`."
    model, blocks = _setup(name, samples, seq_len)
    f = _modes(model, blocks, batch_size)[mode]

    def status(key):
        for line in open('/proc/self/status'):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    lib0 = status('VmRSS:')
    if mode == 'calibrate':  # numba and its compiled kernels: loaded once per process, reported on their own
        from modelopt_nb.kernels import _cpu_kernels

        _cpu_kernels()
    lib = status('VmRSS:') - lib0
    import gc

    gc.collect()
    with open('/proc/self/clear_refs', 'w') as fh:
        fh.write('5')  # reset the high-water mark
    before = status('VmRSS:')
    f()
    print(json.dumps(dict(before=before, peak=status('VmHWM:'), lib=lib)))


def _peak(name, mode, samples, seq_len, batch_size):
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import bench_calibrate as b; "
        f"b._peak_child({name!r}, {mode!r}, {samples}, {seq_len}, {batch_size})"
    )
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=900)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list:
    samples, seq_len, batch_size, rounds = (8, 256, 8, 3) if quick else (16, 256, 8, 9)
    out = []
    for name in MODELS:
        try:
            model, blocks = _setup(name, samples, seq_len)
        except (ImportError, FileNotFoundError) as e:
            print(f'   skipping {name}: {e}', flush=True)
            continue
        modes = _modes(model, blocks, batch_size)
        for f in modes.values():
            f()  # warm up
        times = {k: [] for k in modes}
        for _ in range(rounds):
            for k, f in modes.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
        ntok = blocks.num_tokens
        tps = {k: ntok / min(v) for k, v in times.items()}
        # this machine's speed drifts by tens of % within a minute: compare each calibrate pass with the plain pass run just
        # before it, and take the median of those paired ratios
        paired = lambda a, b: statistics.median(x / y for x, y in zip(times[a], times[b]))
        case = f'{name} fp32 cpu, {samples}x{seq_len} tokens, batch {batch_size}'
        out += [
            dict(case=case, metric=f'{k} throughput (best of {rounds})', value=v, unit='tokens/s')
            for k, v in tps.items()
        ]
        r = paired('plain', 'calibrate')
        out.append(
            dict(
                case=case,
                metric='calibrate / plain forward throughput',
                value=r,
                unit='x',
                ratio=r,
                ratio_of=f'median over {rounds} rounds of plain time / calibrate time, run back to back in one process',
                goal='>= 0.9',
                best_of_ratio=tps['calibrate'] / tps['plain'],
            )
        )
        r = paired('plain', 'calibrate_torch')
        out.append(
            dict(
                case=case,
                metric="calibrate(kernels='torch') / plain forward throughput",
                value=r,
                unit='x',
                ratio=r,
                ratio_of=f'median over {rounds} rounds, one process: the same pass without the compiled CPU kernels',
            )
        )
        r = paired('stack', 'calibrate')
        out.append(
            dict(
                case=case,
                metric='calibrate / decoder-stack forward throughput',
                value=r,
                unit='x',
                ratio=r,
                ratio_of=f'median over {rounds} rounds of model.model time / calibrate time, one process',
            )
        )
        del model
        pk = {k: _peak(name, k, samples, seq_len, batch_size) for k in ('plain', 'calibrate')}
        for k, v in pk.items():
            out.append(
                dict(case=case, metric=f'{k} peak RSS above start', value=(v['peak'] - v['before']) / 2**20, unit='MiB')
            )
        out.append(
            dict(
                case=case,
                metric='numba + compiled kernels, loaded once per process (not in the peaks)',
                value=pk['calibrate']['lib'] / 2**20,
                unit='MiB',
            )
        )
        c, p_, lib = pk['calibrate']['peak'], pk['plain']['peak'], pk['calibrate']['lib']
        out.append(
            dict(
                case=case,
                metric='calibrate / plain forward peak memory',
                value=(c - lib) / p_,
                unit='x',
                ratio=(c - lib) / p_,
                ratio_of='peak RSS of each process, one run each; the one-time numba load (reported above) subtracted',
                goal='<= 1.2',
            )
        )
        out.append(
            dict(
                case=case,
                metric='calibrate / plain forward peak memory, numba included',
                value=c / p_,
                unit='x',
                ratio=c / p_,
                ratio_of='peak RSS of each process, one run each',
            )
        )
        d = lambda v: v['peak'] - v['before']
        out.append(
            dict(
                case=case,
                metric='calibrate / plain forward peak memory above the loaded model',
                value=d(pk['calibrate']) / d(pk['plain']),
                unit='x',
                ratio=d(pk['calibrate']) / d(pk['plain']),
                ratio_of='peak RSS increase during the pass, calibrate / plain',
            )
        )
    return out


if __name__ == '__main__':
    for r in run(quick='--quick' in sys.argv):
        print(r)
