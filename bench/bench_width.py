"""Width pruning and sparsity: how long the surgery takes next to one forward pass of the same model (one run, same process)."""

import time

import torch

from modelopt_nb.core import count_params, tiny_model
from modelopt_nb.width import prune_width, sort_width
from modelopt_nb.sparsity import sparsify


def _t(f, n=1):
    t = time.perf_counter()
    for _ in range(n):
        out = f()
    return (time.perf_counter() - t) / n, out


def run(quick: bool) -> list[dict]:
    torch.manual_seed(0)
    kw = dict(
        num_hidden_layers=4 if quick else 8,
        hidden_size=256 if quick else 512,
        intermediate_size=768 if quick else 1536,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=32 if quick else 64,
        vocab_size=8192,
    )
    m = tiny_model('qwen3', **kw)
    case = f"qwen3 {kw['num_hidden_layers']}L h{kw['hidden_size']} ({count_params(m) / 1e6:.1f}M params)"
    x = torch.randint(0, 8192, (8, 256))
    with torch.no_grad():
        m(x)
        fwd, _ = _t(lambda: m(x), 3)
    half = dict(
        intermediate_size=kw['intermediate_size'] // 2, num_attention_heads=4, hidden_size=kw['hidden_size'] // 2
    )
    prune, _ = _t(lambda: prune_width(m, importance='magnitude', **half))
    sort, _ = _t(lambda: sort_width(m, importance='magnitude'))
    sp24, _ = _t(lambda: sparsify(m, 'magnitude', nm='2:4'))
    sp50, _ = _t(lambda: sparsify(m, 'magnitude', sparsity=0.5))
    of = 'operation / one forward pass of 8 x 256 tokens, one run'
    return [
        dict(case=case, metric='forward 8x256 tokens', value=fwd, unit='s'),
        dict(
            case=case,
            metric='prune_width (every axis halved, copy)',
            value=prune,
            unit='s',
            ratio=prune / fwd,
            ratio_of=of,
        ),
        dict(case=case, metric='sort_width (copy)', value=sort, unit='s', ratio=sort / fwd, ratio_of=of),
        dict(case=case, metric='sparsify magnitude 2:4 (copy)', value=sp24, unit='s', ratio=sp24 / fwd, ratio_of=of),
        dict(case=case, metric='sparsify magnitude 50% (copy)', value=sp50, unit='s', ratio=sp50 / fwd, ratio_of=of),
    ]
