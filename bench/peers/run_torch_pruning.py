"""torch-pruning 1.6.1 on one job: MLP neurons, GQA head groups or hidden channels of a Llama decoder, with its
magnitude, Taylor (gradients of the LM loss on the calibration tokens) or activation importance (MetaPruner, one shot).

Only the groups of the row's axis get a non-zero ratio; the config is updated afterwards so that the checkpoint reloads.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Timer, batches, calibration_ids, finish, load_job, load_model  # noqa: E402

import torch  # noqa: E402
import torch_pruning as tp  # noqa: E402

job = load_job()
model, tok = load_model(job)
cfg, t, m, row = model.config, job['target'], job['method'], job['row']
ids = calibration_ids(job)
layers = model.model.layers
imp = {'magnitude': lambda: tp.importance.GroupMagnitudeImportance(p=2, group_reduction='mean'),
       'taylor': lambda: tp.importance.GroupTaylorImportance(group_reduction='mean'),
       'activation': lambda: tp.importance.ActivationImportance(group_reduction='mean')}[m]()


def ratios():
    "Per-axis pruning ratios: (global ratio for hidden groups, ratio dict, head ratio)."
    d = {}
    mlp = 1 - t['intermediate_size'] / cfg.intermediate_size if row == 'mlp' else 0.0
    for lyr in layers:
        d[(lyr.mlp.gate_proj, lyr.mlp.up_proj)] = mlp
        for p in (lyr.self_attn.q_proj, lyr.self_attn.k_proj, lyr.self_attn.v_proj):
            d[p] = 0.0
    hidden = 1 - t['hidden_size'] / cfg.hidden_size if row == 'hidden' else 0.0
    heads = 1 - t['num_key_value_heads'] / cfg.num_key_value_heads if row == 'heads' else 0.0
    return hidden, d, heads


with Timer() as tm:
    tied = cfg.tie_word_embeddings  # the LM head is left out of the graph (a 49,152-channel group stalls it), re-tied
    hidden, d, heads = ratios()
    num_heads = {}
    for lyr in layers:
        a = lyr.self_attn
        num_heads[a.q_proj] = cfg.num_attention_heads
        num_heads[a.k_proj] = cfg.num_key_value_heads
        num_heads[a.v_proj] = cfg.num_key_value_heads
    example = ids[:1, :64]
    # Only the projections whose output channels the row prunes are roots of a group; the others are ignored as
    # roots (their inputs are still cut with the channels that feed them). Building a group for every projection
    # makes torch-pruning's group search run past 15 min on the k/v groups (py-spy: index lists past 100,000 entries)
    # even when their ratio is 0.
    roots = {'mlp': ('gate_proj', 'up_proj'), 'heads': ('q_proj', 'k_proj', 'v_proj', 'o_proj'),
             'hidden': ('o_proj', 'down_proj')}[row]
    others = [m_ for lyr in layers for n_, m_ in list(lyr.self_attn.named_children()) + list(lyr.mlp.named_children())
              if isinstance(m_, torch.nn.Linear) and n_ not in roots]
    pruner = tp.pruner.MetaPruner(model, example_inputs=example, importance=imp, global_pruning=False,
                                  pruning_ratio=hidden, pruning_ratio_dict=d, ignored_layers=[model.lm_head] + others,
                                  num_heads=num_heads, prune_num_heads=row == 'heads', prune_head_dims=False,
                                  head_pruning_ratio=heads, round_to=None,
                                  output_transform=lambda out: out.logits.sum())
    if m == 'taylor':
        model.zero_grad()
        for b in batches(ids, 4):
            model(input_ids=b['input_ids'], labels=b['input_ids']).loss.backward()
        pruner.step()
    elif m == 'activation':
        with imp.compute_importance(model), torch.no_grad():
            for b in batches(ids, 8):
                model(input_ids=b['input_ids'])
        pruner.step()
    else:
        pruner.step()
    model.zero_grad(set_to_none=True)
    # config and attention attributes after the surgery
    hd = cfg.head_dim if getattr(cfg, 'head_dim', None) else cfg.hidden_size // cfg.num_attention_heads
    for lyr in layers:
        a = lyr.self_attn
        a.head_dim = hd
        nq, nkv = a.q_proj.out_features // hd, a.k_proj.out_features // hd
        a.num_key_value_groups = nq // nkv
        cfg.num_attention_heads, cfg.num_key_value_heads = nq, nkv
        cfg.intermediate_size = lyr.mlp.gate_proj.out_features
    cfg.head_dim = hd
    cfg.hidden_size = model.model.embed_tokens.weight.shape[1]
    if tied:
        model.lm_head.weight = model.model.embed_tokens.weight
    elif model.lm_head.in_features != cfg.hidden_size:
        raise RuntimeError('torch-pruning left the untied LM head at its old width')
finish(job, model, tok, tm.s, note=f'hidden {cfg.hidden_size}, mlp {cfg.intermediate_size}, heads '
       f'{cfg.num_attention_heads}/{cfg.num_key_value_heads}')
