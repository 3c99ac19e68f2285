"""Generation speed (modelopt_nb.benchmark, eager backend): tiny-qwen3-36l against its 24-layer depth-pruned copy and against
tiny-qwen3-4b-analog (36 narrower layers, fewer parameters), the reference comparison in miniature. Prompt 128, output 64
tokens, batch 1 and 8; ratios of output tokens/s measured in the same run.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(quick=False):
    from modelopt_nb.zoo import load_pretrained
    from modelopt_nb.calibrate import calibrate, calibration_blocks
    from modelopt_nb.depth import prune_depth
    from modelopt_nb.benchmark import Workload, benchmark

    big, tok = load_pretrained('tiny-qwen3-36l')
    small, _ = prune_depth(
        big, 24, calibrate(big, calibration_blocks(tok, big, 16, 256), progress=False), progress=False
    )
    analog, _ = load_pretrained('tiny-qwen3-4b-analog')
    w = Workload(
        batch_sizes=(1,) if quick else (1, 8), prompt_len=128, output_len=32 if quick else 64, repeats=2 if quick else 5
    )
    models = {'tiny-qwen3-36l': big, 'pruned to 24 layers': small, 'tiny-qwen3-4b-analog': analog}
    res = benchmark(models, w, backends=('eager',), progress=False)
    out = []
    for r in res:
        case = f'{r.model}, eager cpu fp32, batch {r.batch}, prompt {r.prompt_len}, output {r.output_len}'
        out += [
            dict(case=case, metric='output tokens/s', value=r.output_tokens_per_s, unit='tokens/s'),
            dict(case=case, metric='time to first token', value=1e3 * r.ttft_s, unit='ms'),
            dict(case=case, metric='time per output token', value=1e3 * r.tpot_s, unit='ms'),
        ]
    by = {(r.model, r.batch): r.output_tokens_per_s for r in res}
    for b in w.batch_sizes:
        for other in ('tiny-qwen3-36l', 'tiny-qwen3-4b-analog'):
            q = by['pruned to 24 layers', b] / by[other, b]
            out.append(
                dict(
                    case=f'batch {b}',
                    metric=f'pruned 24 layers / {other} output tokens/s',
                    value=q,
                    unit='x',
                    ratio=q,
                    ratio_of=f'median-of-{w.repeats} output tokens/s, one run',
                )
            )
    return out


if __name__ == '__main__':
    for r in run(quick='--quick' in sys.argv):
        print(r)
