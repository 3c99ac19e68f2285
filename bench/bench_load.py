"""Load time of the embedded default, and held-out perplexity throughput of `evaluate.perplexity` against a plain forward loop."""

import statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch


def run(quick=False):
    from modelopt_nb.zoo import load_pretrained
    from modelopt_nb.data import corpus_blocks
    from modelopt_nb.evaluate import perplexity

    loads = []
    for _ in range(2 if quick else 3):
        t = time.perf_counter()
        model, tok = load_pretrained('tiny-qwen3-36l')
        loads.append(time.perf_counter() - t)
    blocks = corpus_blocks(tok, 'heldout', seq_len=256, max_blocks=8 if quick else 32)

    def plain():
        with torch.no_grad():
            for b in blocks.batches(8):
                model(input_ids=b['input_ids'], use_cache=False)

    plain()  # warm-up
    t = time.perf_counter()
    plain()
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    r = perplexity(model, blocks, batch_size=8, progress=False)
    t_ppl = time.perf_counter() - t
    tok_s = blocks.num_tokens / t_ppl
    return [
        dict(case='tiny-qwen3-36l', metric='load time (median)', value=statistics.median(loads), unit='s'),
        dict(case='tiny-qwen3-36l', metric='held-out perplexity', value=r.perplexity, unit=''),
        dict(
            case='tiny-qwen3-36l',
            metric='perplexity throughput',
            value=tok_s,
            unit='tokens/s',
            ratio=(blocks.num_tokens / t_plain) / tok_s,
            ratio_of='plain forward tokens/s / perplexity tokens/s, one run',
            goal='<= 1.1',
        ),
    ]


if __name__ == '__main__':
    for r in run(quick='--quick' in sys.argv):
        print(r)
