"""Reliability of the `modelopt-nb` command: outputs never overlap or replace what is not ours, one process writes under
torchrun, and every bad input is one line on stderr before any work."""

import errno, os, subprocess, sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

import modelopt_nb
from modelopt_nb.cli import main
from modelopt_nb.core import MARKER, save_checkpoint, tiny_model

ROOT = Path(__file__).resolve().parents[1]
TOK_DIR = Path(modelopt_nb.__file__).parent / 'assets' / 'tokenizer-tiny'
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}


def _folder(path, layers=4, seed=0, vocab=None, **kw):
    "A saved tiny random Qwen3 with the shipped tiny tokenizer."
    tok = AutoTokenizer.from_pretrained(TOK_DIR)
    m = tiny_model('qwen3', num_hidden_layers=layers, vocab_size=vocab or len(tok), seed=seed, **kw)
    return save_checkpoint(m, tok, path)


def _one_line_error(capsys, argv, rc=1):
    "Run the command; it must fail with `rc` and say so in one line with no traceback. Returns that line."
    capsys.readouterr()                                             # what the setup printed
    got = main(argv)
    err = capsys.readouterr().err.strip()
    assert got == rc, err
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    return err


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp('m') / 'model')


def test_output_holding_the_source_is_refused(tmp_path, capsys):
    src = _folder(tmp_path / 'parent' / 'src')
    (tmp_path / 'parent' / 'notes.txt').write_text('mine')
    err = _one_line_error(capsys, ['prune-depth', str(src), '--num-layers', '2', '--out', str(tmp_path / 'parent'),
                                   '--overwrite', '--samples', '2', '--seq-len', '16', '--quiet'])
    assert "the model's source" in err
    assert sorted(p.name for p in (tmp_path / 'parent').iterdir()) == ['notes.txt', 'src']
    assert (src / 'model.safetensors').exists()


def test_overwrite_replaces_only_our_outputs(tmp_path, model_dir, capsys):
    theirs = tmp_path / 'theirs'
    theirs.mkdir(); (theirs / 'data.csv').write_text('1,2')
    args = ['--num-layers', '2', '--samples', '2', '--seq-len', '16', '--quiet', '--overwrite']
    err = _one_line_error(capsys, ['prune-depth', str(model_dir), '--out', str(theirs), *args])
    assert 'did not write' in err and (theirs / 'data.csv').read_text() == '1,2'
    ours = tmp_path / 'ours'
    assert main(['prune-depth', str(model_dir), '--out', str(ours), *args]) == 0
    assert main(['prune-depth', str(model_dir), '--out', str(ours), *args]) == 0   # a previous output of ours
    assert (ours / MARKER).exists() and (ours / 'model.safetensors').exists()


@pytest.mark.parametrize('argv, msg', [
    (['distill', '--teacher', 'M', '--student', 'M', '--out', 'O', '--tokens', '-100'], '--tokens must be positive'),
    (['eval', 'M', '--seq-len', '0'], '--seq-len must be positive, got 0'),
    (['eval', 'M', '--batch-size', '0'], '--batch-size must be positive, got 0'),
    (['distill', '--teacher', 'M', '--student', 'M', '--out', 'O', '--tokens', '10', '--temperature', 'inf'],
     '--temperature must be a finite number'),
    (['prune-width', 'M', '--out', 'O', '--target-params', '1M', '--multiple', '0'], '--multiple must be positive'),
])
def test_bad_numbers_are_usage_errors(argv, msg, capsys):
    assert msg in _one_line_error(capsys, argv)


def test_token_ids_beyond_the_vocabulary(tmp_path, capsys):
    small = _folder(tmp_path / 'small', layers=2, vocab=64)        # the tokenizer has far more tokens than 64
    err = _one_line_error(capsys, ['eval', str(small), '--blocks', '1', '--seq-len', '16'])
    assert "outside the model's vocabulary of 64" in err
    err = _one_line_error(capsys, ['calibrate', str(small), '--out', str(tmp_path / 'c'), '--samples', '1',
                                   '--seq-len', '16', '--quiet'])
    assert "outside the model's vocabulary of 64" in err


def test_full_disk_and_read_only_folder(tmp_path, model_dir, capsys, monkeypatch):
    import modelopt_nb.core as core

    def full(self, path, **kw):
        raise OSError(errno.ENOSPC, 'No space left on device', str(Path(path) / 'model.safetensors'))

    monkeypatch.setattr(type(tiny_model()), 'save_pretrained', full)
    args = ['--num-layers', '2', '--samples', '2', '--seq-len', '16', '--quiet']
    err = _one_line_error(capsys, ['prune-depth', str(model_dir), '--out', str(tmp_path / 'o'), *args])
    assert 'model.safetensors: no space left on the device' in err and 'free on the device' in err
    assert not (tmp_path / 'o').exists() and [p.name for p in tmp_path.iterdir()] == []
    monkeypatch.undo()
    monkeypatch.setattr(core.os, 'access', lambda p, m: False)      # as root, chmod does not stop writes
    err = _one_line_error(capsys, ['prune-depth', str(model_dir), '--out', str(tmp_path / 'o'), *args])
    assert 'is not writable' in err


def test_damaged_weights(tmp_path, capsys):
    bad = _folder(tmp_path / 'bad', layers=2)
    f = bad / 'model.safetensors'
    with open(f, 'r+b') as fh:
        fh.truncate(f.stat().st_size // 2)
    err = _one_line_error(capsys, ['describe', str(bad)])
    assert 'model.safetensors is damaged' in err


def test_hub_id_offline():
    r = subprocess.run([sys.executable, '-m', 'modelopt_nb.cli', 'describe', 'Qwen/Qwen3-8B-nope'], capture_output=True,
                       text=True, timeout=120, env={**ENV, 'HF_HUB_OFFLINE': '1'})
    err = r.stderr.strip()
    assert r.returncode == 1 and len(err.splitlines()) == 1 and 'Traceback' not in err, err
    assert "Cannot load 'Qwen/Qwen3-8B-nope'" in err and 'no network' in err


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_cuda_without_cuda(model_dir, capsys):
    assert 'CUDA is not available' in _one_line_error(capsys, ['describe', str(model_dir), '--device', 'cuda'])


def test_hidden_size_that_the_config_refuses(tmp_path, capsys):
    tok = AutoTokenizer.from_pretrained(TOK_DIR)
    m = tiny_model('llama', num_hidden_layers=1, hidden_size=72, num_attention_heads=9, num_key_value_heads=3,
                   head_dim=8, vocab_size=len(tok), tie_word_embeddings=False)
    src = save_checkpoint(m, tok, tmp_path / 'nine-heads')
    err = _one_line_error(capsys, ['prune-width', str(src), '--hidden-size', '50', '--out', str(tmp_path / 'o')])
    assert 'not a multiple of the number of attention heads (9)' in err
    assert 'nearest allowed hidden sizes: 45, 54' in err
    assert not (tmp_path / 'o').exists()


def test_calibration_of_other_weights(tmp_path, model_dir, capsys):
    other = _folder(tmp_path / 'other', seed=1)                    # the same shape, other weights
    assert main(['calibrate', str(other), '--out', str(tmp_path / 'cal'), '--samples', '2', '--seq-len', '16',
                 '--quiet']) == 0
    args = ['prune-depth', str(model_dir), '--num-layers', '2', '--calibration', str(tmp_path / 'cal'), '--quiet']
    err = _one_line_error(capsys, [*args, '--out', str(tmp_path / 'o')])
    assert 'same shape but other weights' in err
    assert main([*args, '--out', str(tmp_path / 'o'), '--force-calibration']) == 0


@pytest.mark.parametrize('text, msg', [
    ('model: [unclosed\n', 'is not valid YAML at line 2'),
    ('', 'is empty'),
    ('model: M\noutput: O\nprune: [{depth: {num_layers: twenty}}]\n', "`num_layers` must be an integer, got 'twenty'"),
    ('model: M\noutput: O\nprune: [{depth: {num_layers: 2}}]\ncalibration: {samples: -1}\n',
     '`samples` must be positive, got -1'),
    ('model: M\noutput: O\nprune: [{depth: {num_layers: 2, metric: bii}}]\n', "Unknown layer metric 'bii'"),
])
def test_recipe_errors_are_one_line(tmp_path, model_dir, capsys, text, msg):
    f = tmp_path / 'r.yaml'
    f.write_text(text.replace('model: M', f'model: {model_dir}').replace('output: O', f'output: {tmp_path / "o"}'))
    assert msg in _one_line_error(capsys, ['run', str(f), '--quiet'])
    assert not (tmp_path / 'o').exists()


def test_debug_shows_the_traceback(capsys):
    capsys.readouterr()
    assert main(['describe', '/no/such/folder', '--debug']) == 1
    err = capsys.readouterr().err
    assert 'Traceback' in err and err.strip().splitlines()[-1].startswith('modelopt-nb describe: error: No such model')


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _torchrun(*args, timeout=180):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(_free_port()),
           '-m', 'modelopt_nb.cli', *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT)


def test_distill_with_two_processes(tmp_path, model_dir):
    student = _folder(tmp_path / 'student', layers=3, seed=2)
    out = tmp_path / 'out'
    r = _torchrun('distill', '--teacher', str(model_dir), '--student', str(student), '--tokens', '128',
                  '--seq-len', '32', '--batch-size', '2', '--out', str(out), '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    names = {p.name for p in out.iterdir()}
    assert {'model.safetensors', 'config.json', 'distill.json', MARKER} <= names, names
    assert r.stdout.count('distilled ') == 1                        # one process reports


def test_recipe_with_two_processes(tmp_path, model_dir):
    f = tmp_path / 'r.yaml'
    f.write_text(f"model: {model_dir}\noutput: {tmp_path / 'run'}\ncalibration: {{samples: 2, seq_len: 16}}\n"
                 "prune: [{depth: {num_layers: 3}}]\ndistill: {max_steps: 2, batch_size: 2, seq_len: 16}\n")
    r = _torchrun('run', str(f), '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / 'run'
    assert (run / 'report.json').exists() and (run / 'model' / 'model.safetensors').exists() and (run / MARKER).exists()
    assert r.stdout.count('# modelopt_nb run') == 1
