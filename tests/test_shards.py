"""Token shards under stress: a distillation resumed at the exact next block, a packing run killed halfway, and bad
input (see nbs/01a_shards.ipynb)."""

import gzip, json, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'}
TOKENIZER = ROOT / 'modelopt_nb' / 'assets' / 'tokenizer-tiny'


@pytest.fixture(scope='module')
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TOKENIZER)


@pytest.fixture(scope='module')
def text():
    from modelopt_nb.data import load_source

    return load_source('austen')[:300_000]


@pytest.fixture(scope='module')
def shards(tmp_path_factory, tok, text):
    from modelopt_nb.shards import pack

    d = tmp_path_factory.mktemp('src')
    (d / 'austen.txt').write_text(text)
    return pack(d / 'austen.txt', d / 'shards', tok, heldout=0.05, shard_tokens=20_000, progress=False)


# --- resume at the exact next block ---------------------------------------------------------------------------------


def _student(seed=0):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = AutoConfig.for_model(
        'qwen3', vocab_size=6144, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=128, bos_token_id=0, eos_token_id=0, pad_token_id=0,
        tie_word_embeddings=True,
    )
    return AutoModelForCausalLM.from_config(cfg)


class _Stop(Exception):
    pass


def _served(model, blocks):
    "Record the block id of every sequence the model is trained on (a forward pre-hook on the student)."
    seen, ids = [], {bytes(blocks[i]['input_ids'].numpy()): blocks.block_id(i) for i in range(len(blocks))}

    def hook(mod, args, kwargs):
        x = kwargs.get('input_ids', args[0] if args else None)
        if mod.training: seen.extend(ids[bytes(r.numpy())] for r in x.cpu())

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def _run(out, ds, steps, resume=False, stop_at=None):
    from transformers import TrainerCallback
    from modelopt_nb.distill import DistillConfig, distill

    class StopAt(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == stop_at: raise _Stop(state.global_step)

    model = _student()
    seen = _served(model, ds)
    cfg = DistillConfig(output_dir=str(out), kd_weight=0.0, ce_weight=1.0, max_steps=steps, batch_size=4, save_steps=3,
                        learning_rate=1e-3, progress=False, seed=7)
    try: distill(None, model, ds, cfg, callbacks=[StopAt()] if stop_at else None, resume=resume)
    except _Stop: pass
    return seen


def test_resumed_distillation_continues_at_the_next_block(tmp_path, shards):
    "A run stopped after its checkpoint at step 3 and resumed trains on exactly the blocks of an uninterrupted run."
    from modelopt_nb.shards import TokenShards

    ds = TokenShards(shards, 32, shuffle=True, seed=1)
    assert len({bytes(ds[i]['input_ids'].numpy()) for i in range(len(ds))}) == len(ds)   # block ids are recoverable
    ref = _run(tmp_path / 'ref', ds, 8)
    first = _run(tmp_path / 'run', ds, 8, stop_at=3)
    assert (tmp_path / 'run' / 'checkpoint-3').is_dir()
    rest = _run(tmp_path / 'run', ds, 8, resume=True)
    assert len(ref) == 8 * 4 and len(set(ref)) == len(ref)
    assert first[:12] + rest == ref, (first, rest, ref)


def test_mixture_order_is_fixed(shards):
    "A mixture's order depends on its seed only: two builds agree block for block."
    from modelopt_nb.shards import TokenShards, mix

    a, b = TokenShards(shards, 32), TokenShards(shards, 32, split='heldout')
    m1, m2 = mix([a, b], [0.8, 0.2], num_blocks=300, seed=3), mix([a, b], [0.8, 0.2], num_blocks=300, seed=3)
    assert all(torch.equal(m1[i]['input_ids'], m2[i]['input_ids']) for i in range(300))


# --- killed while packing -------------------------------------------------------------------------------------------

PACKER = """
import sys
from transformers import AutoTokenizer
from modelopt_nb.shards import pack
pack(sys.argv[1], sys.argv[2], AutoTokenizer.from_pretrained(sys.argv[3]), shard_tokens=5_000, batch_docs=4,
     progress=False)
"""


def test_killed_pack_leaves_nothing_that_looks_complete(tmp_path, tok, text):
    "SIGKILL after the first shard is written: no shard folder; packing again removes the leftovers and completes."
    from modelopt_nb.shards import check_shards, pack

    src, out = tmp_path / 'big.txt', tmp_path / 'shards'
    src.write_text(text * 3)
    p = subprocess.Popen([sys.executable, '-c', PACKER, str(src), str(out), str(TOKENIZER)], env=ENV,
                         stderr=subprocess.PIPE)
    t0 = time.time()
    while not list(tmp_path.glob('.shards.tmp-*/train-s00-00001.bin')):
        assert p.poll() is None, p.stderr.read().decode()[-2000:]
        assert time.time() - t0 < 60, 'no shard within 60 s'
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stderr.close()
    assert not out.exists() and list(tmp_path.glob('.shards.tmp-*'))
    pack(src, out, tok, shard_tokens=5_000, progress=False)
    assert not list(tmp_path.glob('.shards.tmp-*'))
    m = check_shards(out, tok, verify=True)
    assert m['splits']['train']['tokens'] + m['splits']['heldout']['tokens'] > 150_000


def test_a_failing_pack_leaves_nothing(tmp_path, tok):
    "A source that fails halfway (bad UTF-8 in the second file of a folder): one line naming it, nothing written."
    from modelopt_nb.shards import pack

    d = tmp_path / 'corpus'
    d.mkdir()
    (d / 'a.txt').write_text('Good text. ' * 1000)
    (d / 'b.txt').write_bytes(b'caf\xe9 ' * 100)
    with pytest.raises(ValueError, match=r'b\.txt is not UTF-8 text'):
        pack(d, tmp_path / 'shards', tok, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['corpus']


# --- sources --------------------------------------------------------------------------------------------------------


def test_every_kind_of_source_gives_the_same_tokens(tmp_path, tok):
    "JSONL, gzip JSONL, Parquet and a save_to_disk dataset holding the same documents pack to the same token ids."
    import datasets, pyarrow as pa, pyarrow.parquet as pq
    from modelopt_nb.shards import TokenShards, pack

    docs = [f'Document {i}: ' + 'words and more words. ' * (5 + i % 7) for i in range(200)]
    (tmp_path / 'a.jsonl').write_text(''.join(json.dumps({'text': t, 'n': i}) + '\n' for i, t in enumerate(docs)))
    (tmp_path / 'b.jsonl.gz').write_bytes(gzip.compress((tmp_path / 'a.jsonl').read_bytes()))
    pq.write_table(pa.table({'text': docs}), tmp_path / 'c.parquet')
    datasets.Dataset.from_dict({'text': docs}).save_to_disk(str(tmp_path / 'd'))
    got = []
    for name in ('a.jsonl', 'b.jsonl.gz', 'c.parquet', 'd'):
        out = pack(tmp_path / name, tmp_path / f'shards-{name}', tok, heldout=0, progress=False)
        got.append(TokenShards(out, 16).to_blocks().input_ids)
    for g in got[1:]: assert torch.equal(g, got[0])
    eos = int((got[0] == tok.eos_token_id).sum())
    assert 150 < eos <= 200          # one EOS per document (the last partial block is dropped)


def test_weights_of_a_mix_come_from_sources(tmp_path, tok):
    "One folder packed from two sources gives one dataset per source, mixed by weight."
    from modelopt_nb.shards import Source, TokenShards, mix, pack

    (tmp_path / 'x.jsonl').write_text(''.join(json.dumps({'text': 'x ' * 300}) + '\n' for _ in range(20)))
    (tmp_path / 'y.jsonl').write_text(''.join(json.dumps({'body': 'y ' * 300}) + '\n' for _ in range(20)))
    out = pack([tmp_path / 'x.jsonl', Source(tmp_path / 'y.jsonl', text_field='body')], tmp_path / 's', tok, heldout=0,
               progress=False)
    x, y = TokenShards(out, 32, sources='x.jsonl'), TokenShards(out, 32, sources=1)
    m = mix([x, y], [0.9, 0.1], num_blocks=1000, seed=0)
    share = np.mean([m.src[i] == 0 for i in range(1000)])
    assert 0.85 < share < 0.95
    xid = tok('x', add_special_tokens=False)['input_ids'][0]
    assert all((m[i]['input_ids'] == xid).any() == (m.src[i] == 0) for i in range(50))


# --- bad input: one clear line naming the file, nothing lost --------------------------------------------------------


def _copy(shards, tmp_path):
    import shutil

    return Path(shutil.copytree(shards, tmp_path / 'copy'))


def test_truncated_shard(tmp_path, shards):
    from modelopt_nb.shards import TokenShards

    d = _copy(shards, tmp_path)
    f = d / 'train-s00-00001.bin'
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r'train-s00-00001\.bin holds 39,900 bytes, its manifest says 40,000'):
        TokenShards(d, 32)


def test_corrupt_shard_fails_its_checksum(tmp_path, shards):
    from modelopt_nb.shards import TokenShards, check_shards

    d = _copy(shards, tmp_path)
    f = d / 'train-s00-00002.bin'
    b = bytearray(f.read_bytes())
    b[1000] ^= 0xFF
    f.write_bytes(bytes(b))
    TokenShards(d, 32)                                         # the size is right: a plain open does not read it all
    with pytest.raises(ValueError, match=r'train-s00-00002\.bin fails its SHA-256 checksum'):
        check_shards(d, verify=True)


def test_manifest_that_does_not_match_its_shards(tmp_path, shards):
    from modelopt_nb.shards import TokenShards

    d = _copy(shards, tmp_path)
    (d / 'train-s00-00003.bin').rename(d / 'train-s00-00099.bin')
    with pytest.raises(FileNotFoundError, match=r'train-s00-00003\.bin is missing'):
        TokenShards(d, 32)
    (d / 'train-s00-00099.bin').rename(d / 'train-s00-00003.bin')
    (d / 'train-s00-00077.bin').write_bytes(b'\0\0')
    with pytest.raises(ValueError, match=r'does not list \(train-s00-00077\.bin\)'):
        TokenShards(d, 32)
    (d / 'train-s00-00077.bin').unlink()
    m = json.loads((d / 'manifest.json').read_text())
    m['splits']['train']['tokens'] += 1
    (d / 'manifest.json').write_text(json.dumps(m))
    with pytest.raises(ValueError, match='add up to another token count'):
        TokenShards(d, 32)
    (d / 'manifest.json').unlink()
    with pytest.raises(ValueError, match='holds shards but no manifest.json'):
        TokenShards(d, 32)


def test_shards_of_another_tokenizer(shards):
    from transformers import AutoTokenizer
    from modelopt_nb.shards import TokenShards

    other = AutoTokenizer.from_pretrained(TOKENIZER)
    other.add_special_tokens({'additional_special_tokens': ['<tool>']})
    with pytest.raises(ValueError, match='was packed with another tokenizer'):
        TokenShards(shards, 32, tokenizer=other)


@pytest.mark.parametrize(
    'name, content, error',
    [
        ('empty.txt', b'', r'empty\.txt holds no text'),
        ('blank.jsonl', b'\n\n', r'blank\.jsonl holds no text'),
        ('latin1.txt', 'Ça coûte'.encode('latin-1'), r'latin1\.txt is not UTF-8 text'),
        ('fake.txt.gz', b'plain text', r'fake\.txt\.gz is not gzip data'),
        ('cut.txt.gz', gzip.compress(b'some text ' * 10_000)[:200], r'cut\.txt\.gz: damaged gzip data'),
        ('field.jsonl', b'{"body": "x"}\n', r"field\.jsonl, line 1 has no text field 'text'; it has: \['body'\]"),
        ('broken.jsonl', b'{"text": "x"}\n{"text": \n', r'broken\.jsonl, line 2: not JSON'),
        ('data.csv', b'a,b\n', r'data\.csv: cannot pack a \.csv file'),
    ],
)
def test_bad_sources(tmp_path, tok, name, content, error):
    from modelopt_nb.shards import pack

    (tmp_path / name).write_bytes(content)
    with pytest.raises((ValueError, KeyError), match=error):
        pack(tmp_path / name, tmp_path / 'out', tok, progress=False)
    assert not (tmp_path / 'out').exists() and not list(tmp_path.glob('.out.tmp-*'))
    assert (tmp_path / name).read_bytes() == content                                  # the source is untouched


def test_parquet_without_the_text_column(tmp_path, tok):
    import pyarrow as pa, pyarrow.parquet as pq
    from modelopt_nb.shards import pack

    pq.write_table(pa.table({'content': ['a', 'b']}), tmp_path / 'p.parquet')
    with pytest.raises(KeyError, match=r"p\.parquet has no text column 'text'; its columns: \['content'\]"):
        pack(tmp_path / 'p.parquet', tmp_path / 'out', tok, progress=False)


def test_saved_dataset_without_the_text_column(tmp_path, tok):
    import datasets
    from modelopt_nb.shards import pack

    datasets.DatasetDict({'train': datasets.Dataset.from_dict({'content': ['a']})}).save_to_disk(str(tmp_path / 'ds'))
    with pytest.raises(KeyError, match=r"ds has no text column 'text'; its columns: \['content'\]"):
        pack(tmp_path / 'ds', tmp_path / 'out', tok, progress=False)
    with pytest.raises(KeyError, match=r"ds has no split 'validation'; its splits: \['train'\]"):
        pack({'path': tmp_path / 'ds', 'split': 'validation'}, tmp_path / 'out', tok, progress=False)


def test_budget_larger_than_the_data(shards):
    from modelopt_nb.shards import TokenShards, check_budget

    ds = TokenShards(shards, 32)
    with pytest.raises(ValueError, match=r'is 2\.50 epochs of the .* tokens in .*shards: pack more text'):
        check_budget(2.5 * len(ds) * 32, ds)


def test_cli_one_line_errors(tmp_path, shards, capsys):
    "The command says what is wrong in one line: a budget beyond the shards, shards of another tokenizer's vocabulary."
    from modelopt_nb.cli import main

    rc = main(['distill', '--teacher', 'tiny-qwen3-36l', '--student', 'tiny-qwen3-36l', '--tokens', '1000000000',
               '--out', str(tmp_path / 'o'), '--data', str(shards), '--quiet'])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and 'epochs of the' in err, err
    rc = main(['calibrate', 'tiny-qwen3-36l', '--out', str(tmp_path / 'c'), '--data', str(tmp_path / 'none')])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and 'No token shards in' in err, err


# --- a recipe's data section -----------------------------------------------------------------------------------------


def test_recipe_trains_from_its_data_section(tmp_path, text, monkeypatch):
    "A recipe with `data:` packs its sources once, calibrates and trains on them (not the shipped corpus), reuses them."
    import modelopt_nb.data as D
    from modelopt_nb.pipeline import load_recipe, run_recipe

    (tmp_path / 'a.txt').write_text(text[:100_000])
    (tmp_path / 'b.jsonl').write_text(''.join(json.dumps({'body': f'Note {i}. ' * 40}) + '\n' for i in range(100)))
    calls, orig = [], D.corpus_blocks
    spy = lambda tok, split, *a, **k: calls.append(split) or orig(tok, split, *a, **k)
    monkeypatch.setattr(D, 'corpus_blocks', spy)
    y = f"""
model: tiny-qwen3-36l
output: {tmp_path}/run
calibration: {{samples: 4, seq_len: 64}}
prune: [{{depth: {{num_layers: 34}}}}]
distill: {{batch_size: 2, seq_len: 64, learning_rate: 1.0e-4, divergence_factor: null}}
data:
  shards: {tmp_path}/shards
  sources:
    - {{path: {tmp_path}/a.txt, weight: 0.7}}
    - {{path: {tmp_path}/b.jsonl, text_field: body, weight: 0.3}}
  tokens: 640
  heldout: 0.01
"""
    rec = run_recipe(y, progress=False)
    hist = json.loads((Path(rec['model_dir']) / 'distill_history.json').read_text())
    assert max(r.get('step', 0) for r in hist) == 5                       # 640 tokens / (2 × 64) per step
    assert 'train' not in calls and 'calibration' not in calls              # calibrated on the data's train split too
    manifest = tmp_path / 'shards' / 'manifest.json'
    t0 = manifest.stat().st_mtime_ns
    run_recipe(y.replace('prune:', 'overwrite: true\nprune:'), progress=False)
    assert manifest.stat().st_mtime_ns == t0                               # packed once, then reused
    with pytest.raises(ValueError, match=r'data: the budget of 1,000,000,000 tokens is .* epochs of the'):
        load_recipe(y.replace('tokens: 640', 'tokens: 1e9').replace('run\n', 'run2\n'))


def test_block_consumers_take_shards(shards):
    "What reads calibration blocks whole (SparseGPT, width reconstruction) takes shards too, in memory."
    from modelopt_nb.core import check_blocks, tiny_model
    from modelopt_nb.shards import TokenShards

    m = tiny_model('qwen3', vocab_size=6144, num_hidden_layers=2)
    ids = check_blocks(m, TokenShards(shards, 32).take(3))
    assert ids.shape == (3, 32) and torch.equal(ids[1], TokenShards(shards, 32)[1]['input_ids'])
