"""`make bench`: run every `bench/bench_*.py` and write `bench/results.json` and `bench/results.md`.

Each benchmark module defines `run(quick: bool) -> list[dict]`; a record holds `bench`, `case`, `metric`, `value`, `unit`,
and optionally `ratio` with `ratio_of` (what was divided by what, measured in the same run) and `goal` (text).
Usage: python bench/run.py [--only NAME ...] [--quick]
"""

import argparse, importlib.util, json, platform, sys, time, traceback
from pathlib import Path

HERE = Path(__file__).parent


def discover(only=None):
    for f in sorted(HERE.glob('bench_*.py')):
        name = f.stem[len('bench_') :]
        if only and name not in only:
            continue
        spec = importlib.util.spec_from_file_location(f.stem, f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield name, mod


def table(records):
    rows = ['| bench | case | metric | value | unit | ratio | ratio of | goal |', '|---|---|---|---|---|---|---|---|']
    for r in records:
        v = r.get('value')
        v = f'{v:.4g}' if isinstance(v, float) else v
        ratio = r.get('ratio')
        ratio = f'{ratio:.3f}' if isinstance(ratio, float) else (ratio or '')
        rows.append(
            f"| {r.get('bench', '')} | {r.get('case', '')} | {r.get('metric', '')} | {v} | {r.get('unit', '')} | {ratio} | {r.get('ratio_of', '')} | {r.get('goal', '')} |"
        )
    return '\n'.join(rows) + '\n'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--only', nargs='*')
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--out', default=str(HERE / 'results'))
    a = ap.parse_args(argv)
    import torch

    records, failed = [], []
    for name, mod in discover(a.only):
        t = time.time()
        print(f'== bench {name}', flush=True)
        try:
            for r in mod.run(quick=a.quick):
                r.setdefault('bench', name)
                records.append(r)
                print('  ', r, flush=True)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f'   ({time.time() - t:.1f} s)', flush=True)
    meta = dict(
        time=time.strftime('%Y-%m-%d %H:%M:%S'),
        python=platform.python_version(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        machine=platform.machine(),
        failed=failed,
    )
    Path(a.out + '.json').write_text(json.dumps(dict(meta=meta, results=records), indent=1))
    Path(a.out + '.md').write_text(f"# Benchmarks\n\n{meta}\n\n" + table(records))
    print(table(records))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
