"""Distillation with FSDP2 through the Trainer on 2 CPU processes (torchrun, gloo): the loss curve of one process,
sharded checkpoints that resume, and a student that comes back as a plain `transformers` model (12_distill)."""

import json, os, shutil, socket, subprocess, sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[1]
WORKER = str(ROOT / 'tests' / 'distill_worker.py')
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
COMMON = ['--steps', '4', '--save-steps', '2', '--fsdp', '--features', '--balance', 'fixed']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(tmp, name, procs, *extra):
    "One worker run (1 process, or `procs` under torchrun) into run folder `name`: its result, weights and stdout."
    args = [WORKER, '--out', str(tmp / name), '--result', str(tmp / f'{name}.json'), *COMMON, *extra]
    if procs > 1:
        port = str(_free_port())
        args = ['-m', 'torch.distributed.run', '--nproc_per_node', str(procs), '--master_port', port, *args]
    r = subprocess.run([sys.executable, *args], env=ENV, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp / f'{name}.json').read_text())
    return res, load_file(res['weights']), r.stdout


def _losses(res):
    return torch.tensor([r['loss'] for r in res['history']])


def test_fsdp_two_processes(tmp_path):
    one, w1, out1 = _run(tmp_path, 'one', 1, '--batch', '4')  # fsdp is dropped on one process, with a note
    two, w2, _ = _run(tmp_path, 'two', 2, '--batch', '2', '--save-model', str(tmp_path / 'student'))
    assert 'one process has nothing to shard over' in out1
    assert (one['world'], two['world']) == (1, 2)
    # the same global batch (1 × 4 blocks against 2 × 2): the same curve, up to float reduction order
    l1, l2 = _losses(one), _losses(two)
    assert len(l1) == len(l2) == 4 and torch.allclose(l1, l2, rtol=1e-3, atol=0), (l1, l2)
    assert all(torch.allclose(w1[k], w2[k], rtol=1e-3, atol=1e-5) for k in w1)

    # the checkpoints are sharded runs' own (Trainer's FSDP files) beside a plain save_pretrained folder
    ck = tmp_path / 'two' / 'checkpoint-4'
    names = {p.name for p in ck.iterdir()}
    want = {'model.safetensors', 'config.json', 'pytorch_model_fsdp.bin', 'optimizer.bin', 'scheduler.pt'}
    assert want <= names, names
    plain = AutoModelForCausalLM.from_pretrained(ck)
    assert all(torch.equal(v, w2[k]) for k, v in plain.state_dict().items() if k in w2)
    # the returned student is a plain model: its save_pretrained folder loads with the final weights
    back = AutoModelForCausalLM.from_pretrained(tmp_path / 'student')
    sd = back.state_dict()
    assert set(w2) <= set(sd) and all(torch.equal(sd[k], w2[k]) for k in w2)

    # resume: drop the last checkpoint, continue from checkpoint-2, and end where the uninterrupted run ended
    shutil.rmtree(ck)
    res, w3, out3 = _run(tmp_path, 'two', 2, '--batch', '2', '--resume')
    assert 'Resuming from checkpoint-2' in out3, out3[-2000:]
    assert [r['step'] for r in res['history']][-2:] == [3, 4]
    assert torch.allclose(_losses(res)[-2:], l2[-2:], rtol=1e-4), (_losses(res), l2)
    assert all(torch.allclose(w3[k], w2[k], rtol=1e-4, atol=1e-6) for k in w2)
    assert (tmp_path / 'two' / 'checkpoint-4' / 'pytorch_model_fsdp.bin').exists()


def test_recipe_with_fsdp(tmp_path):
    "`modelopt-nb run` under torchrun with `fsdp: true` and depth candidates: a plain model, the choice reported."
    from transformers import AutoTokenizer

    import modelopt_nb
    from modelopt_nb.core import save_checkpoint, tiny_model

    tok = AutoTokenizer.from_pretrained(Path(modelopt_nb.__file__).parent / 'assets' / 'tokenizer-tiny')
    save_checkpoint(tiny_model('qwen3', num_hidden_layers=4, vocab_size=len(tok), seed=0), tok, tmp_path / 'model')
    (tmp_path / 'r.yaml').write_text(
        f"model: {tmp_path / 'model'}\noutput: {tmp_path / 'run'}\ncalibration: {{samples: 2, seq_len: 16}}\n"
        "prune: [{depth: {num_layers: 3, metric: [bi, angular], policy: [contiguous, scattered]}}]\n"
        "distill: {max_steps: 2, batch_size: 2, seq_len: 16, fsdp: true, save_steps: 2}\n")
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(_free_port()),
           '-m', 'modelopt_nb.cli', 'run', str(tmp_path / 'r.yaml'), '--quiet']
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / 'run' / 'distill-run' / 'checkpoint-2' / 'pytorch_model_fsdp.bin').exists()
    assert AutoModelForCausalLM.from_pretrained(tmp_path / 'run' / 'model').config.num_hidden_layers == 3
    rec = json.loads((tmp_path / 'run' / 'report.json').read_text())
    meta = rec['stages'][1]['plan']['meta']
    assert len(meta['candidates']) == 4 and meta['chosen_by'] == 'calibration-text perplexity'
