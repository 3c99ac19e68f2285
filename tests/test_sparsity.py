"""Sequential sparsity on the shipped trained model: SparseGPT, ALPS and sequential Wanda against one-shot Wanda."""

import pytest
import torch

from modelopt_nb.calibrate import calibrate, calibration_blocks
from modelopt_nb.data import corpus_blocks
from modelopt_nb.evaluate import perplexity
from modelopt_nb.distill import DistillConfig, distill
from modelopt_nb.sparsity import (SparsityMaskCallback, alps_prune, nm_violations, sparse_linears, sparsegpt_prune,
                                  sparsify, sparsity_report)
from modelopt_nb.zoo import load_pretrained


@pytest.fixture(scope='module')
def setup():
    "The shipped tiny-qwen3-36l, 16 calibration blocks and 8 held-out blocks of 128 tokens."
    torch.manual_seed(0)
    model, tok = load_pretrained('tiny-qwen3-36l')
    return model, calibration_blocks(tok, model, 16, 128), corpus_blocks(tok, 'heldout', seq_len=128, max_blocks=8)


def _ppl(model, blocks) -> float: return perplexity(model, blocks, batch_size=8, progress=False).perplexity


def test_sparsegpt_beats_wanda_at_2_4(setup):
    "At 2:4, SparseGPT's weight updates give a lower perplexity than Wanda's mask on calibration and held-out text."
    model, cal, held = setup
    wanda, _ = sparsify(model, 'wanda', nm='2:4', calibration=calibrate(model, cal, progress=False))
    sg, masks = sparsify(model, 'sparsegpt', nm='2:4', blocks=cal)
    assert set(nm_violations(sg, '2:4').values()) == {0}
    assert abs(sparsity_report(sg).total - 0.5) < 1e-6
    assert _ppl(sg, cal) < _ppl(wanda, cal)
    assert _ppl(sg, held) < _ppl(wanda, held)


def _inputs_of(model, names, blocks) -> dict:
    "The inputs [tokens, in] of the named linears of the dense `model` on `blocks`."
    got, hs = {n: [] for n in names}, []
    for n in names:
        hs.append(model.get_submodule(n).register_forward_pre_hook(
            lambda mod, a, n=n: got[n].append(a[0].detach().reshape(-1, a[0].shape[-1]))))
    with torch.no_grad(): model(blocks.input_ids)
    for h in hs: h.remove()
    return {n: torch.cat(v) for n, v in got.items()}


def test_alps_beats_sparsegpt_at_2_4(setup):
    "At 2:4, ALPS leaves a lower output error than SparseGPT on real layer inputs, keeps the pattern, and reloads."
    model, cal, held = setup
    names = [s.name for s in sparse_linears(model) if s.layer == 5]
    for n, X in _inputs_of(model, names, cal).items():
        W, H = model.get_submodule(n).weight.detach(), X.T @ X
        err = lambda Wn: (X @ (W - Wn).T).norm().item()
        Ws, ms = sparsegpt_prune(W, H, nm=(2, 4))
        Wa, ma = alps_prune(W, H, nm=(2, 4))
        assert err(Wa) < err(Ws * ms), n
    sg, _ = sparsify(model, 'sparsegpt', nm='2:4', blocks=cal)
    al, masks = sparsify(model, 'alps', nm='2:4', blocks=cal)
    assert set(nm_violations(al, '2:4').values()) == {0}
    assert all(not al.get_submodule(n).weight[~k].any() for n, k in masks.items())
    assert _ppl(al, held) < 1.02 * _ppl(sg, held)


def test_wanda_sequential_unstructured(setup):
    "Sequential Wanda at 50%: exactly half of every projection, every row, and a perplexity near one-shot Wanda's."
    model, cal, held = setup
    ws, masks = sparsify(model, 'wanda-sequential', sparsity=0.5, blocks=cal.input_ids, batch_size=4)
    assert all(int((~m).sum(1).min()) == int((~m).sum(1).max()) == m.shape[1] // 2 for m in masks.values())
    wanda, _ = sparsify(model, 'wanda', sparsity=0.5, calibration=calibrate(model, cal, progress=False))
    assert _ppl(ws, held) < 1.1 * _ppl(wanda, held)


def test_masked_distillation_keeps_2_4(setup, tmp_path):
    "Distilling a 2:4 model from its dense teacher with the mask callback keeps the pattern and lowers the loss."
    model, cal, held = setup
    sm, masks = sparsify(model, 'magnitude', nm='2:4')
    cfg = DistillConfig(output_dir=str(tmp_path/'run'), max_steps=4, batch_size=4, learning_rate=3e-4, progress=False)
    before = _ppl(sm, held)
    student, _ = distill(model, sm, cal, cfg, callbacks=[SparsityMaskCallback(masks)])
    assert set(nm_violations(student, '2:4').values()) == {0}
    assert all(not student.get_submodule(n).weight[~k].any() for n, k in masks.items())
    assert _ppl(student, held) < before
