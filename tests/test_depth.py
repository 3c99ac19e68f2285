"""Calibration and depth pruning end to end: CLI, plain-transformers reload, cached generation, bad input."""

import json, subprocess, sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import modelopt_nb
from modelopt_nb.cli import main
from modelopt_nb.core import tiny_model, save_checkpoint, adapter
from modelopt_nb.calibrate import Calibration, calibrate
from modelopt_nb.depth import drop_layers, prune_depth, load_depth_plan

TOK_DIR = Path(modelopt_nb.__file__).parent / 'assets' / 'tokenizer-tiny'
ARGS = ['--samples', '4', '--seq-len', '32', '--quiet']


def _folder(tmp_path, model_type='qwen3', layers=6, name='model'):
    "A saved tiny random model with the shipped tiny tokenizer."
    tok = AutoTokenizer.from_pretrained(TOK_DIR)
    m = tiny_model(model_type, num_hidden_layers=layers, vocab_size=len(tok), tie_word_embeddings=model_type != 'llama')
    return save_checkpoint(m, tok, tmp_path / name), m


def _sd(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / 'model.safetensors'))


@pytest.mark.parametrize('model_type', ['qwen3', 'qwen2', 'llama'])
def test_cli_calibrate_then_prune(tmp_path, model_type):
    src, m = _folder(tmp_path, model_type)
    cal_dir, out = tmp_path / 'cal', tmp_path / 'pruned'
    assert main(['calibrate', str(src), '--out', str(cal_dir), *ARGS]) == 0
    cal = Calibration.load(cal_dir).check(m)
    assert (cal.samples, cal.tokens) == (4, 128)
    assert (
        main(
            ['prune-depth', str(src), '--num-layers', '4', '--calibration', str(cal_dir), '--out', str(out), '--quiet']
        )
        == 0
    )
    # plain transformers, no code of ours
    back = AutoModelForCausalLM.from_pretrained(out).eval()
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['num_hidden_layers'] == 4 and len(back.model.layers) == 4
    if 'layer_types' in cfg:
        assert len(cfg['layer_types']) == 4
    assert [L.self_attn.layer_idx for L in back.model.layers] == [0, 1, 2, 3]
    plan = load_depth_plan(out)
    assert (
        plan.num_layers_before == 6
        and len(plan.kept) == 4
        and plan.metric == 'bi'
        and plan.kept[0] == 0
        and plan.kept[-1] == 5
    )
    assert plan.kept == [i for i in range(6) if i not in sorted(range(1, 5), key=lambda i: (cal.bi[i].item(), i))[:2]]
    # the saved weights are exactly the kept layers of the source
    ref, _ = drop_layers(m, plan.removed)
    ids = torch.randint(0, 6000, (2, 12), generator=torch.Generator().manual_seed(0))
    assert torch.equal(back(ids).logits, ref(ids).logits)
    # generation with the KV cache gives the same tokens as without it
    kw = dict(max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert torch.equal(back.generate(ids, use_cache=True, **kw), back.generate(ids, use_cache=False, **kw))
    assert (out / 'tokenizer.json').exists()


def test_repruning_from_saved_calibration_is_deterministic(tmp_path):
    src, m = _folder(tmp_path)
    cal_dir = tmp_path / 'cal'
    assert main(['calibrate', str(src), '--out', str(cal_dir), *ARGS]) == 0
    for name in ('a', 'b'):
        assert (
            main(
                [
                    'prune-depth',
                    str(src),
                    '--num-layers',
                    '3',
                    '--metric',
                    'angular',
                    '--policy',
                    'contiguous',
                    '--calibration',
                    str(cal_dir),
                    '--out',
                    str(tmp_path / name),
                    '--quiet',
                ]
            )
            == 0
        )
    a, b = _sd(tmp_path / 'a'), _sd(tmp_path / 'b')
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert load_depth_plan(tmp_path / 'a') == load_depth_plan(tmp_path / 'b')
    # calibrating again on the same text gives the same calibration, hence the same plan
    assert main(['calibrate', str(src), '--out', str(tmp_path / 'cal2'), *ARGS]) == 0
    c1, c2 = Calibration.load(cal_dir), Calibration.load(tmp_path / 'cal2')
    assert torch.equal(c1.bi, c2.bi) and torch.equal(c1.in_sq['down_in'], c2.in_sq['down_in'])


def test_cli_loss_metric_without_calibration(tmp_path):
    src, m = _folder(tmp_path, layers=5)
    out = tmp_path / 'pruned'
    assert (
        main(
            [
                'prune-depth',
                str(src),
                '--num-layers',
                '3',
                '--metric',
                'loss',
                '--policy',
                'contiguous',
                '--out',
                str(out),
                '--samples',
                '2',
                '--seq-len',
                '16',
                '--quiet',
            ]
        )
        == 0
    )
    plan = load_depth_plan(out)
    assert plan.removed[1] - plan.removed[0] == 1 and plan.block_scores is not None and plan.scores is None
    assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == 3


def test_cli_bad_input(tmp_path, capsys):
    src, m = _folder(tmp_path)
    other, _ = _folder(tmp_path, layers=4, name='other')
    cal_dir = tmp_path / 'cal'
    assert main(['calibrate', str(other), '--out', str(cal_dir), *ARGS]) == 0
    out = tmp_path / 'pruned'
    assert main(['prune-depth', str(src), '--num-layers', '6', '--calibration', str(cal_dir), '--out', str(out)]) == 1
    assert main(['prune-depth', str(src), '--num-layers', '4', '--calibration', str(cal_dir), '--out', str(out)]) == 1
    assert 'another shape' in capsys.readouterr().err
    assert (
        main(['prune-depth', str(src), '--num-layers', '4', '--calibration', str(tmp_path / 'nope'), '--out', str(out)])
        == 1
    )
    assert not out.exists()
    assert main(['calibrate', str(other), '--out', str(cal_dir), *ARGS]) == 1  # a calibration is there already
    assert 'already holds a calibration' in capsys.readouterr().err
    assert main(['calibrate', str(tmp_path / 'missing'), '--out', str(tmp_path / 'c3'), *ARGS]) == 1
    # the source folder is untouched by all of this
    assert AutoModelForCausalLM.from_pretrained(src).config.num_hidden_layers == 6


def test_inplace_failures_leave_the_model_untouched():
    m = tiny_model('qwen3', num_hidden_layers=6)
    ids = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(0))
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    cfg = m.config.to_dict()
    cal_other = calibrate(tiny_model('qwen3', num_hidden_layers=6, hidden_size=32, head_dim=8), ids, progress=False)
    for kw in [
        dict(num_layers=6),
        dict(num_layers=0),
        dict(num_layers=4, calibration=cal_other),
        dict(num_layers=4, batches=torch.zeros(0, 4, dtype=torch.long)),
        dict(num_layers=4, metric='loss'),
    ]:
        with pytest.raises(ValueError):
            prune_depth(m, inplace=True, progress=False, **kw)
    for layers in ([6], [1, 1], list(range(6))):
        with pytest.raises(ValueError):
            drop_layers(m, layers, inplace=True)
    assert m.config.to_dict() == cfg and all(torch.equal(v, sd[k]) for k, v in m.state_dict().items())
    # and a successful in-place prune changes the object itself
    pm, plan = prune_depth(m, 4, batches=ids, inplace=True, progress=False)
    assert (
        pm is m
        and adapter(m).num_layers == 4
        and plan.apply(tiny_model('qwen3', num_hidden_layers=6))[0].config.num_hidden_layers == 4
    )


def test_console_script(tmp_path):
    "The installed `modelopt-nb` command dispatches to our functions."
    src, _ = _folder(tmp_path, layers=4)
    exe = Path(sys.executable).parent / 'modelopt-nb'
    r = subprocess.run(
        [str(exe), 'prune-depth', str(src), '--num-layers', '2', '--out', str(tmp_path / 'p'), *ARGS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert 'DepthPlan: 4 → 2 layers by bi/scattered' in r.stdout
    r = subprocess.run(
        [str(exe), 'prune-depth', str(src), '--num-layers', '9', '--out', str(tmp_path / 'q'), *ARGS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1 and 'num_layers must be' in r.stderr
