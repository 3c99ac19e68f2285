"""optipfair 0.4.2 on one job: depth (last layers, or its cosine layer importance on the calibration tokens) and
MLP_GLU neuron pairs (MAW, VOW, PON, L2 from weights; MAW-hybrid adds the calibration activations)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Timer, batches, calibration_ids, finish, load_job, load_model  # noqa: E402

from optipfair import prune_model  # noqa: E402
from optipfair.pruning.depth import analyze_layer_importance  # noqa: E402

job = load_job()
model, tok = load_model(job)
t, m = job['target'], job['method']
L = model.config.num_hidden_layers
with Timer() as tm:
    if job['row'] == 'depth':
        k = L - t['num_layers']
        if m == 'last':
            model = prune_model(model, pruning_type='DEPTH', num_layers_to_remove=k, layer_selection_method='last',
                                show_progress=False)
        elif m == 'cosine-importance':  # remove the k layers whose output is closest to their input
            scores = analyze_layer_importance(model, batches(calibration_ids(job)), show_progress=False)
            drop = sorted(sorted(scores, key=lambda i: scores[i])[:k])
            model = prune_model(model, pruning_type='DEPTH', layer_indices=drop, layer_selection_method='custom',
                                show_progress=False)
        else:
            raise ValueError(f'unknown depth method {m}')
    elif job['row'] == 'mlp':
        pct = 100 * (1 - t['intermediate_size'] / model.config.intermediate_size)
        kw = dict(dataloader=batches(calibration_ids(job))) if m == 'MAW-hybrid' else {}
        model = prune_model(model, pruning_type='MLP_GLU', neuron_selection_method=m.split('-')[0],
                            pruning_percentage=pct, show_progress=False, **kw)
    else:
        raise ValueError(f"optipfair has no method for the row {job['row']}")
finish(job, model, tok, tm.s)
