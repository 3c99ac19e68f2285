"""Distillation across processes and across a crash: the checks that need fresh processes (see nbs/12_distill.ipynb)."""

import json, os, signal, subprocess, sys, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKER = str(ROOT / 'tests' / 'distill_worker.py')
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}


def _run(args, timeout=240):
    r = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _result(path):
    res = json.loads(Path(path).read_text())
    from safetensors.torch import load_file

    return res, load_file(res['weights'])


def test_two_processes_match_one(tmp_path):
    """2 CPU processes (torchrun, gloo) × 2 blocks per step give the loss curve of 1 process × 4 blocks (same global
    batch). Fixed loss weights: the dynamic balancer scales per micro-batch on each process (as ModelOpt's does), so it
    matches only approximately."""
    feat = ['--features', '--balance', 'fixed']
    _run(
        [sys.executable, WORKER, '--out', str(tmp_path / 'one'), '--result', str(tmp_path / 'one.json'), '--batch', '4']
        + feat
    )
    _run(
        [
            str(BIN / 'torchrun'),
            '--nproc_per_node',
            '2',
            '--master_port',
            '29533',
            WORKER,
            '--out',
            str(tmp_path / 'two'),
            '--result',
            str(tmp_path / 'two.json'),
            '--batch',
            '2',
        ]
        + feat
    )
    (one, w1), (two, w2) = _result(tmp_path / 'one.json'), _result(tmp_path / 'two.json')
    assert (one['world'], two['world']) == (1, 2)
    l1 = torch.tensor([r['loss'] for r in one['history']])
    l2 = torch.tensor([r['loss'] for r in two['history']])
    assert len(l1) == len(l2) == 6
    # tolerance: float reduction order differs (DDP averages two half-batch gradients); 1e-3 relative over 6 steps
    assert torch.allclose(l1, l2, rtol=1e-3, atol=0), (l1, l2)
    for k in ('kd', 'feature'):
        part = lambda res: torch.tensor([r[k] for r in res['history']])
        assert torch.allclose(part(one), part(two), rtol=1e-2)
    assert all(torch.allclose(w1[k], w2[k], rtol=1e-3, atol=1e-5) for k in w1)


def test_resume_after_sigkill_gives_the_same_weights(tmp_path):
    "A run killed (SIGKILL) after its first checkpoint and resumed ends with the weights of an uninterrupted run."
    common = ['--steps', '6', '--save-steps', '2', '--batch', '4']
    _run([sys.executable, WORKER, '--out', str(tmp_path / 'ref'), '--result', str(tmp_path / 'ref.json')] + common)
    run, marker = tmp_path / 'run', tmp_path / 'saved'
    p = subprocess.Popen(
        [
            sys.executable,
            WORKER,
            '--out',
            str(run),
            '--result',
            str(tmp_path / 'killed.json'),
            '--hang-after-save',
            str(marker),
        ]
        + common,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    t0 = time.time()
    while not marker.exists():
        assert p.poll() is None, p.stderr.read().decode()[-3000:]
        assert time.time() - t0 < 180, 'no checkpoint within 180 s'
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stderr.close()
    assert marker.read_text() == '2' and not (tmp_path / 'killed.json').exists()
    assert sorted(d.name for d in run.glob('checkpoint-*')) == ['checkpoint-2']
    _run([sys.executable, WORKER, '--out', str(run), '--result', str(tmp_path / 'resumed.json'), '--resume'] + common)
    (ref, wr), (res, ws) = _result(tmp_path / 'ref.json'), _result(tmp_path / 'resumed.json')
    assert [r['step'] for r in res['history']] == list(range(1, 7))  # the history spans the whole run
    for k in wr:
        assert torch.equal(wr[k], ws[k]), k  # bit-identical final weights
    assert [r['loss'] for r in res['history']] == [r['loss'] for r in ref['history']]


def test_resume_skips_a_checkpoint_cut_short(tmp_path):
    """A run killed while it writes checkpoint-4 (weights written, optimizer state cut short, no trainer_state.json)
    resumes from checkpoint-2, says that it skipped checkpoint-4, and ends with the weights of an uninterrupted run."""
    common = ['--steps', '6', '--save-steps', '2', '--batch', '4']
    _run([sys.executable, WORKER, '--out', str(tmp_path / 'ref'), '--result', str(tmp_path / 'ref.json')] + common)
    run = tmp_path / 'run'
    args = [sys.executable, WORKER, '--out', str(run), '--result', str(tmp_path / 'cut.json')] + common
    r = subprocess.run(args + ['--kill-in-save', '4'], env=ENV, capture_output=True, text=True, timeout=240)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    ck4 = run / 'checkpoint-4'
    assert (ck4 / 'model.safetensors').exists() and not (ck4 / 'trainer_state.json').exists()
    r = _run(args + ['--resume'])
    assert 'Skipping checkpoint-4: trainer_state.json is missing' in r.stdout, r.stdout
    assert 'Resuming from checkpoint-2' in r.stdout, r.stdout
    (_, wr), (res, ws) = _result(tmp_path / 'ref.json'), _result(tmp_path / 'cut.json')
    assert [r['step'] for r in res['history']] == list(range(1, 7))
    for k in wr:
        assert torch.equal(wr[k], ws[k]), k


def _toy_tokenizer(vocab=300):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    from transformers import PreTrainedTokenizerFast
    from modelopt_nb.data import corpus_splits

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(
        [corpus_splits()['train'][:100_000]],
        trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token=None)


def test_cli_distill(tmp_path, capsys):
    "`modelopt-nb distill` on folders: a depth-pruned student with its plan, LoRA, features; refusals are clean errors."
    import copy
    from transformers import AutoModelForCausalLM
    from modelopt_nb.cli import main
    from modelopt_nb.core import tiny_model, adapter, save_checkpoint
    from modelopt_nb.depth import DEPTH_PLAN_FILE

    tok = _toy_tokenizer()
    V = len(tok)
    teacher = tiny_model(num_hidden_layers=4, vocab_size=V)
    student = copy.deepcopy(teacher)
    adapter(student).set_layers([0, 2, 3])
    save_checkpoint(teacher, tok, tmp_path / 't')
    plan = {'kept': [0, 2, 3], 'removed': [1], 'num_layers_before': 4}
    save_checkpoint(student, tok, tmp_path / 's', extra_files={DEPTH_PLAN_FILE: plan})
    args = [
        'distill',
        '--teacher',
        str(tmp_path / 't'),
        '--student',
        str(tmp_path / 's'),
        '--tokens',
        '512',
        '--seq-len',
        '32',
        '--batch-size',
        '4',
        '--out',
        str(tmp_path / 'out'),
        '--features',
        '--lora',
        '4',
        '--loss',
        'jsd',
        '--top-k',
        '16',
        '--lr',
        '1e-3',
        '--quiet',
    ]
    assert main(args) == 0
    assert 'saved to' in capsys.readouterr().out
    out = tmp_path / 'out'
    m = AutoModelForCausalLM.from_pretrained(out)
    assert m.config.num_hidden_layers == 3
    rec = json.loads((out / 'distill.json').read_text())
    assert rec['config']['loss'] == 'jsd' and rec['config']['lora_r'] == 4 and rec['history'][-1]['tokens'] == 512
    assert json.loads((out / DEPTH_PLAN_FILE).read_text())['kept'] == [0, 2, 3]
    assert (tmp_path / 'out-run' / 'distill_run.json').exists()
    # refusals: a non-empty --out, a run folder holding another run, different vocabularies
    assert main(args) == 1 and 'not empty' in capsys.readouterr().err
    assert (
        main(args + ['--out', str(tmp_path / 'o2'), '--run-dir', str(tmp_path / 'out-run')]) == 1
    )  # the last --out wins
    assert 'holds another distillation run' in capsys.readouterr().err
    save_checkpoint(tiny_model(num_hidden_layers=2, vocab_size=V + 4), tok, tmp_path / 't2')
    assert (
        main(
            [
                'distill',
                '--teacher',
                str(tmp_path / 't2'),
                '--student',
                str(tmp_path / 's'),
                '--tokens',
                '64',
                '--out',
                str(tmp_path / 'o3'),
            ]
        )
        == 1
    )
    assert 'vocabularies differ' in capsys.readouterr().err
    assert not (tmp_path / 'o2').exists() and not (tmp_path / 'o3').exists()
