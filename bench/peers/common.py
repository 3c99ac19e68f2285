"""What every peer runner shares: read the job, load the model and the calibration tokens, save the result.

Runs inside a peer's own venv: it imports torch, transformers and safetensors only, never the project.
"""

import json, sys, time
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer


def load_job() -> dict:
    "The job file named on the command line: model, calibration, row, method, target, out."
    job = json.loads(Path(sys.argv[1]).read_text())
    torch.manual_seed(0)
    return job


def load_model(job):
    "(model in float32 on the CPU, tokenizer) from the job's safetensors folder."
    model = AutoModelForCausalLM.from_pretrained(job['model'], dtype=torch.float32)
    try:
        tok = AutoTokenizer.from_pretrained(job['model'])
    except ValueError:  # a transformers 4 venv reading a tokenizer saved by transformers 5: the tokenizer.json suffices
        from transformers import PreTrainedTokenizerFast
        tok = PreTrainedTokenizerFast(tokenizer_file=str(Path(job['model']) / 'tokenizer.json'))
    return model.eval(), tok


def calibration_ids(job) -> torch.Tensor:
    "The shared calibration tokens, LongTensor [n, seq_len]."
    return load_file(job['calibration'])['input_ids']


def batches(ids: torch.Tensor, batch_size=8) -> list:
    "Dicts of input_ids and attention_mask, `batch_size` blocks each."
    return [dict(input_ids=ids[i:i + batch_size], attention_mask=torch.ones_like(ids[i:i + batch_size]))
            for i in range(0, len(ids), batch_size)]


def finish(job, model, tok, seconds: float, note: str = ''):
    "Save the pruned checkpoint (safetensors) and result.json with the time to prune."
    out = Path(job['out'])
    model.save_pretrained(out / 'model', safe_serialization=True)
    tok.save_pretrained(out / 'model')
    (out / 'result.json').write_text(json.dumps(dict(time_s=seconds, note=note), indent=1))
    print(f'done in {seconds:.1f} s', flush=True)


class Timer:
    def __enter__(self):
        self.t0 = time.time()
        return self

    def __exit__(self, *a):
        self.s = time.time() - self.t0
