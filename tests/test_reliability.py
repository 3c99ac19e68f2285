"""Reliability of the `modelopt-nb` command: outputs never overlap or replace what is not ours, one process writes under
torchrun, and every bad input is one line on stderr before any work."""

import errno, json, os, subprocess, sys
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


# ---- Every write goes through one check ------------------------------------------------------------------------------

def _recipe(tmp_path, model_dir, output, extra=''):
    f = tmp_path / 'r.yaml'
    f.write_text(f"model: {model_dir}\noutput: {output}\n{extra}")
    return f


def test_recipe_overwrite_needs_our_marker(tmp_path, model_dir, capsys):
    theirs = tmp_path / 'theirs'
    theirs.mkdir()
    for name in ('notes.txt', 'report.json', 'recipe.json'):         # a user's folder that looks like a finished run
        (theirs / name).write_text('{}')
    err = _one_line_error(capsys, ['run', str(_recipe(tmp_path, model_dir, theirs, 'overwrite: true\n')), '--quiet'])
    assert 'modelopt_nb did not write' in err
    assert sorted(p.name for p in theirs.iterdir()) == ['notes.txt', 'recipe.json', 'report.json']


def test_trainer_args_cannot_move_the_run(tmp_path, model_dir, capsys):
    extra = ("prune: [{depth: {num_layers: 3}}]\n"
             f"distill: {{max_steps: 1, trainer_args: {{output_dir: {tmp_path / 'other-run'}}}}}\n")
    err = _one_line_error(capsys, ['run', str(_recipe(tmp_path, model_dir, tmp_path / 'o', extra)), '--quiet'])
    assert "trainer_args may not set ['output_dir']" in err
    typo = "prune: [{depth: {num_layers: 3}}]\ndistill: {max_steps: 1, trainer_args: {lerning_rate: 0.1}}\n"
    err = _one_line_error(capsys, ['run', str(_recipe(tmp_path, model_dir, tmp_path / 'o', typo)), '--quiet'])
    assert "['lerning_rate'] are not `TrainingArguments` fields" in err
    assert not (tmp_path / 'o').exists() and not (tmp_path / 'other-run').exists()


def test_json_outputs_never_replace_an_input_or_a_users_file(tmp_path, model_dir, capsys):
    cfg = (model_dir / 'config.json').read_text()
    for argv in (['eval', str(model_dir), '--blocks', '1', '--seq-len', '16', '--json', str(model_dir / 'config.json')],
                 ['bench', str(model_dir), '--out', str(model_dir / 'config.json'), '--quiet']):
        assert 'an input of this run' in _one_line_error(capsys, argv)
    assert (model_dir / 'config.json').read_text() == cfg
    mine = tmp_path / 'mine.json'
    mine.write_text('{"my": "results"}')
    err = _one_line_error(capsys, ['eval', str(model_dir), '--blocks', '1', '--seq-len', '16', '--json', str(mine)])
    assert 'modelopt_nb did not write it' in err and mine.read_text() == '{"my": "results"}'
    ours = tmp_path / 'ours.json'
    for _ in range(2):                                             # a file of ours is replaced
        assert main(['eval', str(model_dir), '--blocks', '1', '--seq-len', '16', '--json', str(ours)]) == 0
    assert json.loads(ours.read_text())['written_by'] == 'modelopt_nb'


def test_save_after_chdir_keeps_the_source(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM
    monkeypatch.chdir(tmp_path)
    _folder('src', layers=2)
    m = AutoModelForCausalLM.from_pretrained('src')                 # a relative name, as plain transformers keeps it
    (tmp_path / 'sub').mkdir()
    monkeypatch.chdir(tmp_path / 'sub')
    with pytest.raises(ValueError, match="relative path 'src'"):
        save_checkpoint(m, None, '../src', overwrite=True)
    assert (tmp_path / 'src' / 'model.safetensors').exists() and (tmp_path / 'src' / 'tokenizer.json').exists()


def test_distill_run_dir_is_checked_before_training(tmp_path, model_dir, capsys):
    out = tmp_path / 'x'
    base = ['distill', '--teacher', str(model_dir), '--student', str(model_dir), '--tokens', '64', '--seq-len', '16',
            '--quiet', '--out', str(out)]
    assert 'need two separate folders' in _one_line_error(capsys, [*base, '--run-dir', str(out)])
    assert 'an input of this run' in _one_line_error(capsys, [*base, '--run-dir', str(model_dir / 'run')])
    assert not out.exists() and not (model_dir / 'run').exists()


# ---- Silent wrong results --------------------------------------------------------------------------------------------

def test_recipe_output_with_a_tilde(tmp_path, model_dir, monkeypatch, capsys):
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.chdir(tmp_path)
    assert main(['run', str(_recipe(tmp_path, model_dir, '~/x')), '--quiet']) == 0
    assert not (tmp_path / '~').exists()
    x = tmp_path / 'home' / 'x'
    assert (x / 'report.json').exists() and (x / 'model' / 'model.safetensors').exists()


def test_resume_refuses_inputs_that_changed(tmp_path, capsys):
    import modelopt_nb.distill as D
    src = _folder(tmp_path / 'src', layers=4)
    extra = ("calibration: {samples: 2, seq_len: 16}\nprune: [{depth: {num_layers: 3}}]\n"
             "distill: {max_steps: 3, batch_size: 2, seq_len: 16, save_steps: 1}\n")
    f = _recipe(tmp_path, src, tmp_path / 'run', extra)
    real = D.distill

    def killed(*a, **k):                                         # the run dies after its first checkpoint
        def stop(rec):
            if rec['step'] == 2: raise KeyboardInterrupt
        return real(*a, **{**k, 'callbacks': [stop]})

    D.distill = killed
    try: assert main(['run', str(f), '--quiet']) == 130
    finally: D.distill = real
    assert 'interrupted;' in capsys.readouterr().err
    _folder(tmp_path / 'src2', layers=4, seed=5)
    for p in (tmp_path / 'src2').iterdir():                          # the source's weights change in place
        if p.name == 'model.safetensors': p.replace(src / p.name)
    err = _one_line_error(capsys, ['run', str(f), '--quiet', '--resume'])
    assert 'changed since the run in' in err and 'a resume would mix two models' in err


def test_distill_resume_refuses_other_weights(tmp_path):
    from modelopt_nb.data import TokenBlocks
    from modelopt_nb.distill import DistillConfig, distill
    t, s = tiny_model(num_hidden_layers=2, seed=0), tiny_model(num_hidden_layers=2, seed=1)
    data = TokenBlocks(torch.randint(0, 256, (4, 16)), torch.ones(4, dtype=torch.long))
    cfg = DistillConfig(output_dir=str(tmp_path / 'run'), max_steps=1, batch_size=2, save_steps=1, progress=False)
    distill(t, s, data, cfg)
    with pytest.raises(ValueError, match='student weights'):
        distill(t, tiny_model(num_hidden_layers=2, seed=2), data, cfg, resume=True)


@pytest.mark.parametrize('layers, what', [(5, 'missing: model.layers.4.'), (3, 'unexpected: model.layers.3.')])
def test_config_that_disagrees_with_the_weights(tmp_path, model_dir, capsys, layers, what):
    import shutil
    bad = tmp_path / 'bad'
    shutil.copytree(model_dir, bad)
    cfg = json.loads((bad / 'config.json').read_text())
    (bad / 'config.json').write_text(json.dumps({**cfg, 'num_hidden_layers': layers,
                                                 'layer_types': cfg['layer_types'][:1] * layers}))
    for argv in (['eval', str(bad), '--blocks', '1', '--seq-len', '16'],
                 ['prune-depth', str(bad), '--num-layers', '2', '--out', str(tmp_path / 'o'), '--quiet']):
        err = _one_line_error(capsys, argv)
        assert 'the weights do not match config.json' in err and what in err
    assert not (tmp_path / 'o').exists()


def test_folder_without_tokenizer_files(tmp_path, model_dir, capsys):
    import shutil
    from modelopt_nb.core import load_tokenizer
    from modelopt_nb.zoo import load_pretrained
    bare = tmp_path / 'bare'
    shutil.copytree(model_dir, bare)
    for p in bare.iterdir():
        if 'token' in p.name or p.suffix == '.jinja': p.unlink()
    with pytest.raises(FileNotFoundError, match='holds no tokenizer files'):
        load_tokenizer(bare)
    assert load_pretrained(bare)[1] is None                             # none, never an empty one
    assert 'has no tokenizer' in _one_line_error(capsys, ['eval', str(bare), '--blocks', '1', '--seq-len', '16'])
    err = _one_line_error(capsys, ['prune-depth', str(bare), '--num-layers', '2', '--out', str(tmp_path / 'o')])
    assert 'has no tokenizer' in err and not (tmp_path / 'o').exists()


# ---- Untrusted files -------------------------------------------------------------------------------------------------

def test_link_out_of_a_model_folder(tmp_path, model_dir, capsys):
    import shutil
    m = tmp_path / 'm'
    shutil.copytree(model_dir, m)
    (tmp_path / 'secret.txt').write_text('private')
    (m / 'chat_template.jinja').unlink(missing_ok=True)
    (m / 'chat_template.jinja').symlink_to(tmp_path / 'secret.txt')
    err = _one_line_error(capsys, ['prune-depth', str(m), '--num-layers', '2', '--out', str(tmp_path / 'o')])
    assert 'is a symbolic link to' in err and not (tmp_path / 'o').exists()


@pytest.mark.parametrize('text, msg', [
    ('a: &x [1, 2, 3]\nb: [*x, *x, *x]\n', 'aliases (*x) are not allowed'),
    ('model: M\nmodel: N\n', "duplicate key 'model'"),
])
def test_recipe_aliases_and_duplicate_keys(tmp_path, capsys, text, msg):
    f = tmp_path / 'r.yaml'
    f.write_text(text)
    assert msg in _one_line_error(capsys, ['run', str(f)])


def test_plan_file_cannot_ask_for_memory(tmp_path, model_dir, capsys):
    import shutil
    s = tmp_path / 'student'
    shutil.copytree(model_dir, s)
    (s / 'depth_plan.json').write_text(json.dumps({'kept': [0, 1], 'removed': [], 'num_layers_before': 10**9}))
    err = _one_line_error(capsys, ['distill', '--teacher', str(model_dir), '--student', str(s), '--tokens', '64',
                                   '--out', str(tmp_path / 'o'), '--quiet'])
    assert 'depth_plan.json' in err and 'Inconsistent depth plan' in err


def test_lab_token_is_not_on_the_command_line():
    import importlib.util
    spec = importlib.util.spec_from_file_location('lab', ROOT / 'tools' / 'lab.py')
    lab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab)
    cmd = lab.lab_command('nbs', 8888, 'cfg.py')
    assert not any('token' in a.lower() for a in cmd), cmd


# ---- Clear messages, nothing left behind -----------------------------------------------------------------------------

def test_recipe_paths_say_what_is_wrong(tmp_path, model_dir, capsys):
    f = _recipe(tmp_path, model_dir, tmp_path / 'o')
    f.rename(tmp_path / 'r.YAML')
    assert main(['run', str(tmp_path / 'r.YAML'), '--quiet']) == 0          # any suffix, any case
    assert 'is a folder; give a recipe file' in _one_line_error(capsys, ['run', str(tmp_path)])
    assert 'No recipe file' in _one_line_error(capsys, ['run', str(tmp_path / 'missing.txt')])


def test_full_disk_while_writing_safetensors(tmp_path, model_dir, capsys, monkeypatch):
    from safetensors import SafetensorError

    def full(self, path, **kw):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space '
                              'left on device" })')

    monkeypatch.setattr(type(tiny_model()), 'save_pretrained', full)
    err = _one_line_error(capsys, ['prune-depth', str(model_dir), '--num-layers', '2', '--out', str(tmp_path / 'o'),
                                   '--samples', '2', '--seq-len', '16', '--quiet'])
    assert 'no space left on the device' in err and 'free on the device' in err
    assert [p.name for p in tmp_path.iterdir()] == []


def test_damaged_files_are_named(tmp_path, model_dir, capsys):
    import shutil
    from modelopt_nb.data import load_text_files
    assert main(['calibrate', str(model_dir), '--out', str(tmp_path / 'cal'), '--samples', '2', '--seq-len', '16',
                 '--quiet']) == 0
    (tmp_path / 'cal' / 'calibration.json').write_text('{"shape": ')
    err = _one_line_error(capsys, ['prune-depth', str(model_dir), '--num-layers', '2', '--calibration',
                                   str(tmp_path / 'cal'), '--out', str(tmp_path / 'o')])
    assert 'calibration.json is damaged' in err
    m = tmp_path / 'm'
    shutil.copytree(model_dir, m)
    (m / 'tokenizer.json').write_text('{"version": ')
    assert 'tokenizer.json' not in str(m) and 'cannot be read' in _one_line_error(capsys, ['eval', str(m)])
    (m / 'model.safetensors.index.json').write_text('{"weight_map": ')
    assert 'model.safetensors.index.json is damaged' in _one_line_error(capsys, ['describe', str(m)])
    (tmp_path / 'latin1.txt').write_bytes('caf\xe9'.encode('latin-1'))
    (tmp_path / 'fake.gz').write_text('not gzip')
    with pytest.raises(ValueError, match='latin1.txt is not UTF-8 text'): load_text_files(tmp_path / 'latin1.txt')
    with pytest.raises(ValueError, match=r'fake.gz is not a readable .gz file'): load_text_files(tmp_path / 'fake.gz')


def test_killed_writers_leave_nothing_behind(tmp_path, model_dir):
    dead = 2**22 + 4321                                                 # above pid_max: no such process
    (tmp_path / f'.o.tmp-{dead}-deadbeef').mkdir()                       # what `kill -9` during a save leaves
    (tmp_path / f'.o.tmp-{dead}-deadbeef' / 'model.safetensors').write_bytes(b'0' * 1000)
    assert main(['prune-depth', str(model_dir), '--num-layers', '2', '--out', str(tmp_path / 'o'), '--samples', '2',
                 '--seq-len', '16', '--quiet']) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['o']


def test_ctrl_c_is_one_line(model_dir, capsys, monkeypatch):
    import modelopt_nb.cli as cli

    def interrupted(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(cli, 'load', interrupted)
    capsys.readouterr()
    assert main(['describe', str(model_dir)]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('modelopt-nb describe: interrupted;'), err
