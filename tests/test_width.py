"""Width pruning and sparsity: end-to-end checks (CLI, reload with plain transformers, training with masks)."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from modelopt_nb import cli
from modelopt_nb.core import adapter, count_params, save_checkpoint, tiny_model
from modelopt_nb.width import max_rel_diff, prune_width, sort_width, load_width_plan, WIDTH_PLAN_FILE
from modelopt_nb.width_search import width_params
from modelopt_nb.sparsity import SparsityMaskCallback, masks_from_zeros, sparsify, sparsity_report

TOK = Path(__file__).parents[1] / 'modelopt_nb' / 'assets' / 'tokenizer-tiny'


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    "A tiny random Qwen3 with the shipped tiny tokenizer, saved as a plain folder."
    tok = AutoTokenizer.from_pretrained(TOK)
    m = tiny_model(
        'qwen3',
        num_hidden_layers=3,
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        vocab_size=len(tok),
    )
    return save_checkpoint(m, tok, tmp_path_factory.mktemp('src') / 'tiny')


def _same_generation(m, ids):
    a = m.generate(ids, max_new_tokens=6, do_sample=False, use_cache=True, pad_token_id=0)
    b = m.generate(ids, max_new_tokens=6, do_sample=False, use_cache=False, pad_token_id=0)
    assert a.tolist() == b.tolist()


@pytest.mark.parametrize('mt', ['qwen3', 'qwen2', 'llama', 'mistral'])
def test_prune_every_axis_reload_generate(mt, tmp_path):
    m = tiny_model(
        mt,
        num_attention_heads=8,
        num_key_value_heads=2,
        hidden_size=128,
        head_dim=16,
        intermediate_size=192,
        tie_word_embeddings=mt in ('qwen3', 'mistral'),
    )
    kw = dict(intermediate_size=64, num_attention_heads=2, num_key_value_heads=1, hidden_size=64)
    pm, plan = prune_width(m, importance='magnitude', **kw)
    c = pm.config
    assert (c.intermediate_size, c.num_attention_heads, c.num_key_value_heads, c.hidden_size, c.head_dim) == (
        64,
        2,
        1,
        64,
        16,
    )
    assert count_params(pm) == width_params(m, **kw)
    p = save_checkpoint(pm, None, tmp_path / 'p', extra_files={WIDTH_PLAN_FILE: plan.to_dict()})
    r = AutoModelForCausalLM.from_pretrained(p).eval()
    assert load_width_plan(p) == plan
    x = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(0))
    assert torch.equal(r(x).logits, pm(x).logits)
    assert count_params(r) == width_params(m, **kw)
    _same_generation(r, x[:1, :4])


@pytest.mark.parametrize('mt', ['qwen3', 'qwen2', 'llama'])
def test_sorting_keeps_outputs_with_8_heads(mt):
    m = tiny_model(
        mt, num_attention_heads=8, num_key_value_heads=2, hidden_size=128, head_dim=16, intermediate_size=192
    )
    sm, plan = sort_width(m, importance='magnitude')
    assert plan.is_permutation and plan.heads[0] != list(range(8))
    x = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(3))
    assert max_rel_diff(m(x).logits, sm(x).logits) < 1e-5
    _same_generation(sm, x[:1, :4])


def test_cli_prune_width_with_calibration(model_dir, tmp_path):
    out = tmp_path / 'pruned'
    rc = cli.main(
        [
            'prune-width',
            str(model_dir),
            '--intermediate-size',
            '64',
            '--num-heads',
            '2',
            '--hidden-size',
            '32',
            '--samples',
            '4',
            '--seq-len',
            '32',
            '--out',
            str(out),
            '--quiet',
        ]
    )
    assert rc == 0
    r = AutoModelForCausalLM.from_pretrained(out).eval()
    assert (
        r.config.intermediate_size,
        r.config.num_attention_heads,
        r.config.num_key_value_heads,
        r.config.hidden_size,
    ) == (64, 2, 2, 32)
    assert load_width_plan(out).importance == 'activation'
    assert (out / 'tokenizer.json').exists()
    _same_generation(r, torch.tensor([[5, 6, 7, 8]]))


def test_cli_prune_width_bad_input_changes_nothing(model_dir, tmp_path, capsys):
    before = (model_dir / 'model.safetensors').read_bytes()
    for args, msg in [
        (['--hidden-size', '65'], 'larger than'),
        (['--num-heads', '3'], 'not a multiple'),
        (['--intermediate-size', '0'], 'must be positive'),
        (['--target-params', '10'], 'No shape'),
    ]:
        out = tmp_path / 'never'
        assert (
            cli.main(['prune-width', str(model_dir), *args, '--importance', 'magnitude', '--out', str(out), '--quiet'])
            == 1
        )
        assert msg in capsys.readouterr().err
        assert not out.exists()
    assert (model_dir / 'model.safetensors').read_bytes() == before


def test_cli_prune_width_target_params(model_dir, tmp_path):
    m = AutoModelForCausalLM.from_pretrained(model_dir)
    target = int(count_params(m) * 0.8)
    out = tmp_path / 'searched'
    assert (
        cli.main(
            [
                'prune-width',
                str(model_dir),
                '--target-params',
                str(target),
                '--multiple',
                '16',
                '--importance',
                'magnitude',
                '--max-candidates',
                '3',
                '--eval-blocks',
                '2',
                '--seq-len',
                '32',
                '--out',
                str(out),
                '--quiet',
            ]
        )
        == 0
    )
    r = AutoModelForCausalLM.from_pretrained(out)
    search = json.loads((out / 'width_search.json').read_text())
    assert 0.9 * target <= count_params(r) <= target
    assert count_params(r) == search['candidates'][0]['params'] and len(search['candidates']) == 3


def test_cli_sparsify(model_dir, tmp_path):
    out = tmp_path / 's24'
    assert (
        cli.main(
            [
                'sparsify',
                str(model_dir),
                '--method',
                'wanda',
                '--nm',
                '2:4',
                '--samples',
                '4',
                '--seq-len',
                '32',
                '--out',
                str(out),
                '--quiet',
            ]
        )
        == 0
    )
    r = AutoModelForCausalLM.from_pretrained(out)
    rep = sparsity_report(r)
    assert abs(rep.total - 0.5) < 1e-6
    w = adapter(r).parts(0).up.weight
    assert (w.ne(0).view(w.shape[0], -1, 4).sum(-1) <= 2).all()
    assert json.loads((out / 'sparsity.json').read_text())['report']['total'] == rep.total
    out2 = tmp_path / 'm50'
    assert cli.main(['sparsify', str(model_dir), '--sparsity', '0.5', '--out', str(out2), '--quiet']) == 0
    assert abs(sparsity_report(AutoModelForCausalLM.from_pretrained(out2)).total - 0.5) < 1e-6


def test_trainer_keeps_masks(tmp_path):
    "A few `transformers.Trainer` steps with `SparsityMaskCallback`: zeros stay zero, the rest trains."
    from transformers import Trainer, TrainingArguments

    m = tiny_model('qwen3', num_hidden_layers=2)
    sm, masks = sparsify(m, 'magnitude', sparsity=0.5)
    w0 = adapter(sm).parts(0).gate.weight.detach().clone()
    x = torch.randint(0, 256, (8, 16), generator=torch.Generator().manual_seed(0))
    ds = [{'input_ids': r, 'labels': r} for r in x]
    args = TrainingArguments(
        output_dir=str(tmp_path / 't'),
        per_device_train_batch_size=4,
        max_steps=3,
        learning_rate=1e-2,
        weight_decay=0.1,
        report_to=[],
        save_strategy='no',
        logging_strategy='no',
        use_cpu=True,
        disable_tqdm=True,
    )
    Trainer(model=sm, args=args, train_dataset=ds, callbacks=[SparsityMaskCallback(masks)]).train()
    assert abs(sparsity_report(sm).total - 0.5) < 1e-6
    w1 = adapter(sm).parts(0).gate.weight.detach()
    assert torch.equal(w1 != 0, w0 != 0) and not torch.equal(w1, w0)
    assert all(torch.equal(masks_from_zeros(sm)[k], v) for k, v in masks.items())


def test_llama_with_every_bias():
    "Biases on q/k/v/o and on the MLP are sliced with their rows; counts and the sorting property still hold."
    m = tiny_model('llama', attention_bias=True, mlp_bias=True, tie_word_embeddings=False)
    for p in m.parameters():  # random biases (they start at zero), so a wrong slice shows
        if p.dim() == 1:
            torch.nn.init.normal_(p, std=0.1)
    x = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    sm, _ = sort_width(m, importance='magnitude')
    assert max_rel_diff(m(x).logits, sm(x).logits) < 1e-5
    kw = dict(intermediate_size=32, num_attention_heads=2, hidden_size=48)
    pm, _ = prune_width(m, importance='magnitude', **kw)
    assert count_params(pm) == width_params(m, **kw)
    assert adapter(pm).parts(0).o.bias.shape == (48,) and adapter(pm).parts(0).gate.bias.shape == (32,)


@torch.no_grad()
def _kl(model, ref_logits, x):
    lp = model(x).logits.float().log_softmax(-1)
    ref = ref_logits.detach().float().log_softmax(-1)
    return float(torch.nn.functional.kl_div(lp, ref, log_target=True, reduction='batchmean'))


@pytest.mark.parametrize('mt', ['llama', 'qwen3'])
def test_hybrid_reconstruct_with_biases_reload(mt, tmp_path):
    "Hybrid importance + reconstruction on every axis (with biases): closer logits than slicing, a plain checkpoint."
    from modelopt_nb.calibrate import calibrate

    kw = dict(attention_bias=True, mlp_bias=True) if mt == 'llama' else {}
    m = tiny_model(mt, tie_word_embeddings=False, **kw)
    for p in m.parameters():  # random biases (they start at zero), so a wrong refit shows
        if p.dim() == 1 and mt == 'llama':
            torch.nn.init.normal_(p, std=0.1)
    x = torch.randint(0, 256, (8, 24), generator=torch.Generator().manual_seed(0))
    cal = calibrate(m, x, progress=False)
    shape = dict(intermediate_size=48, num_attention_heads=2, hidden_size=48)
    cut, plan = prune_width(m, cal, importance='hybrid', **shape)
    rec, plan2 = prune_width(m, cal, importance='hybrid', reconstruct=x, **shape)
    assert plan2 == plan and count_params(rec) == width_params(m, **shape)
    ref = m(x).logits
    assert _kl(rec, ref, x) < _kl(cut, ref, x)
    p = save_checkpoint(rec, None, tmp_path / 'r', extra_files={WIDTH_PLAN_FILE: plan.to_dict()})
    r = AutoModelForCausalLM.from_pretrained(p).eval()
    assert torch.equal(r(x).logits, rec(x).logits)
    _same_generation(r, x[:1, :4])


def test_reconstruct_bfloat16_and_bad_input():
    "A bf16 model refits in float64 and stays bf16; bad `reconstruct` input changes nothing."
    from modelopt_nb.calibrate import calibrate

    m = tiny_model('qwen3').to(torch.bfloat16)
    x = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(1))
    cal = calibrate(m, x, progress=False)
    pm, _ = prune_width(m, cal, importance='hybrid', intermediate_size=32, num_key_value_heads=1, reconstruct=x)
    assert adapter(pm).parts(0).down.weight.dtype == torch.bfloat16
    assert torch.isfinite(pm(x).logits.float()).all()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    for bad in (x.float(), x[0], 'text', torch.full((2, 4), 10_000)):
        with pytest.raises(ValueError, match='reconstruct:'):
            prune_width(m, cal, importance='hybrid', intermediate_size=32, inplace=True, reconstruct=bad)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
