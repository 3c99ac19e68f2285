"""Shipped lm-eval tasks through the `lm-eval` command line on a saved, depth-pruned checkpoint folder."""

import json, os, subprocess, sys
from pathlib import Path

import pytest

from modelopt_nb.core import save_checkpoint
from modelopt_nb.depth import prune_depth
from modelopt_nb.data import corpus_blocks
from modelopt_nb.zoo import load_pretrained
from modelopt_nb.tasks import TASKS, tasks_dir, evaluate_tasks, chance_level

OFFLINE = dict(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1')
LM_EVAL = Path(sys.executable).parent / 'lm-eval'


@pytest.fixture(scope='module')
def pruned_folder(tmp_path_factory):
    "`tiny-qwen3-36l` pruned to 24 layers and saved as it ships (safetensors, config, tokenizer)."
    model, tok = load_pretrained('tiny-qwen3-36l')
    cal = corpus_blocks(tok, 'calibration', seq_len=128, max_blocks=4)
    pruned, _ = prune_depth(model, 24, batches=cal, progress=False)
    return save_checkpoint(pruned, tok, tmp_path_factory.mktemp('ckpt') / 'pruned-24'), pruned, tok


def test_lm_eval_cli_runs_a_shipped_task_on_the_folder(pruned_folder, tmp_path):
    folder, _, _ = pruned_folder
    cmd = [str(LM_EVAL), 'run', '--model', 'hf', '--model_args', f'pretrained={folder},dtype=float32']
    cmd += ['--tasks', 'mnb_navigate', '--include_path', str(tasks_dir()), '--device', 'cpu', '--batch_size', '8']
    cmd += ['--limit', '5', '--output_path', str(tmp_path / 'out')]
    p = subprocess.run(cmd, env={**os.environ, **OFFLINE}, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    res = [json.loads(f.read_text()) for f in (tmp_path / 'out').rglob('results_*.json')]
    assert res and 'acc,none' in res[0]['results']['mnb_navigate']
    assert 0 <= res[0]['results']['mnb_navigate']['acc,none'] <= 1


def test_in_memory_matches_the_command_line_items(pruned_folder):
    "The in-memory path scores the same items the CLI does; the model is not changed."
    _, pruned, tok = pruned_folder
    before = {k: v.clone() for k, v in pruned.state_dict().items()}
    r = evaluate_tasks(pruned, ['mnb_navigate', 'mnb_corpus_cloze'], tokenizer=tok, limit=5)
    assert [x['n'] for x in r.rows] == [5, 5]
    assert r.rows[0]['chance'] == chance_level('mnb_navigate', 5) == 0.5
    assert all((before[k] == v).all() for k, v in pruned.state_dict().items())


def test_every_shipped_task_has_attribution():
    text = (tasks_dir() / 'ATTRIBUTION.md').read_text()
    for name in TASKS:
        assert name in text and TASKS[name].licence
