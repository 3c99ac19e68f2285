"""llmcompressor 0.14 on one job: Wanda or SparseGPT, 50% unstructured or 2:4, on every Linear but lm_head, through
its `oneshot` entry point on the shared calibration tokens (32 x 256, not shuffled)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Timer, calibration_ids, finish, load_job, load_model  # noqa: E402

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from llmcompressor import oneshot  # noqa: E402
from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier  # noqa: E402

job = load_job()
model, tok = load_model(job)
t, m = job['target'], job['method']
ids = calibration_ids(job)
ds = Dataset.from_dict(dict(input_ids=ids.tolist(), attention_mask=torch.ones_like(ids).tolist()))
structure = t.get('nm', '0:0')
sparsity = 0.5 if 'nm' in t else t['sparsity']
cls = {'wanda': WandaPruningModifier, 'sparsegpt': SparseGPTModifier}[m]
recipe = cls(sparsity=sparsity, mask_structure=structure, targets=['Linear'], ignore=['re:.*lm_head'])
with Timer() as tm:
    model = oneshot(model=model, tokenizer=tok, dataset=ds, recipe=recipe, num_calibration_samples=len(ids),
                    max_seq_length=ids.shape[1], shuffle_calibration_samples=False)
finish(job, model, tok, tm.s)
