"""Train the zoo's tiny Qwen3 models from scratch.

Two recipes (`--recipe`):
- `v1`: the training split of the shipped corpus (Austen + Brown, 2.6M tokens, one pass); under 60 minutes on 2 CPU
  cores for both models, two minutes on a GPU. One command builds both (seeded):

      .venv/bin/python tools/train_tiny.py all            # tokenizer, then tiny-qwen3-36l, then tiny-qwen3-4b-analog

- `v2`: the pretraining corpus (`tools/build_pretrain_corpus.py`, at least 20M tokens from registry packages, in
  `.corpus/pretrain/`) plus the shipped training split, several passes. Sized for a GPU
  (`tools/train_tiny.py tiny-qwen3-36l --recipe v2 --device cuda`, or `bench/gpu_train.sh` for both models at once);
  on a CPU it checkpoints every `save_every` steps and `--resume` continues a stopped run.

Step by step: `tokenizer`, `tiny-qwen3-36l`, `tiny-qwen3-4b-analog` (add `--device cuda` on a GPU machine).
Training writes the weights (bfloat16, the shipped precision) and the loss curve to runs/tiny/NAME.*; `finalize NAME` (run by `all` and by each model
step unless --train-only) stores them in bfloat16 with the tokenizer, measures held-out perplexity and writes the model card.
Held-out text is never seen: the tokenizer and the model learn from `corpus_splits()['train']` only, plus (v2) the
pretraining corpus, whose builder drops every paragraph that shares a 13-word run with the calibration or held-out split.
The weights are stored in bfloat16 (as Qwen3 checkpoints are) under modelopt_nb/assets/models/NAME, with a model card.
"""

import argparse, gzip, json, math, platform, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / 'runs' / 'tiny'
sys.path.insert(0, str(ROOT))
ASSETS = ROOT / 'modelopt_nb' / 'assets'
TOK_DIR = ASSETS / 'tokenizer-tiny'
SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
VOCAB = 6144

# Qwen3-8B: hidden 4096, intermediate 12288, 32 heads / 8 KV heads x 128, 36 layers. Qwen3-4B: hidden 2560, intermediate 9728.
SHAPES = {
    'tiny-qwen3-36l': dict(hidden_size=128, intermediate_size=384),
    # Qwen3-4B's proportions to Qwen3-8B: hidden 2560/4096, intermediate 9728/12288, same heads and head_dim
    'tiny-qwen3-4b-analog': dict(hidden_size=80, intermediate_size=304),
}
COMMON = dict(
    num_hidden_layers=36,
    num_attention_heads=8,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=VOCAB,
    tie_word_embeddings=True,
    max_position_embeddings=1024,
    rope_parameters={'rope_type': 'default', 'rope_theta': 10000.0},
    rms_norm_eps=1e-6,
    hidden_act='silu',
    attention_bias=False,
    initializer_range=0.02,
)
# the recipes (each the same for both models)
V1 = dict(
    corpus='shipped',
    seq_len=256,
    batch_size=16,
    tokens=2_621_440,
    lr=3e-3,
    min_lr_frac=0.1,
    warmup_steps=40,
    weight_decay=0.1,
    grad_clip=1.0,
    seed=0,
)
RECIPES = {
    'v1': V1,
    # the pretraining corpus, the shipped training split counted `shipped_repeat` times: about 4 passes in all; a large
    # batch (65,536 tokens a step, 1,600 steps) because on a GPU these tiny models are bound by per-step overhead
    'v2': dict(
        V1, corpus='pretrain', shipped_repeat=2, batch_size=256, tokens=104_857_600, warmup_steps=100, save_every=200
    ),
}
RECIPE = RECIPES['v1']
PRETRAIN = ROOT / '.corpus' / 'pretrain'


def train_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors
    from transformers import PreTrainedTokenizerFast
    from modelopt_nb.data import corpus_splits

    text = corpus_splits()['train']
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    tr = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    paras = text.split('\n\n')
    t.train_from_iterator(paras, tr)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=t,
        eos_token='<|endoftext|>',
        pad_token='<|endoftext|>',
        model_max_length=COMMON['max_position_embeddings'],
    )
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    TOK_DIR.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(TOK_DIR)
    print(f'tokenizer: {len(tok)} tokens -> {TOK_DIR}')
    return tok


def lr_at(step, total, r):
    if step < r['warmup_steps']:
        return r['lr'] * (step + 1) / r['warmup_steps']
    p = (step - r['warmup_steps']) / max(1, total - r['warmup_steps'])
    return r['lr'] * (r['min_lr_frac'] + (1 - r['min_lr_frac']) * 0.5 * (1 + math.cos(math.pi * p)))


def pretrain_tokens(tok, r, folder=PRETRAIN):
    "The v2 training stream as one uint16 array: pretraining documents, then the shipped split `shipped_repeat` times."
    import hashlib
    import numpy as np
    from modelopt_nb.data import corpus_splits

    man = Path(folder) / 'manifest.json'
    if not man.exists():
        raise SystemExit(f'{man} is missing: build the corpus with `python tools/build_pretrain_corpus.py` first')
    files = json.dumps(sorted((k, v['sha256']) for k, v in json.loads(man.read_text())['sources'].items()))
    key = hashlib.sha256(files.encode() + (TOK_DIR / 'tokenizer.json').read_bytes()).hexdigest()[:16]
    cache = RUNS / f'pretrain-tokens-{key}.npy'
    if cache.exists():
        pre = np.load(cache)
    else:
        docs = []
        for f in sorted(Path(folder).glob('*.txt.gz')):
            docs += [d for d in gzip.decompress(f.read_bytes()).decode('utf-8').split('\n\n\n') if d.strip()]
        eos = tok.eos_token_id
        enc = tok.backend_tokenizer.encode_batch(docs, add_special_tokens=False)
        pre = np.fromiter((t for e in enc for t in (*e.ids, eos)), dtype=np.uint16)
        RUNS.mkdir(parents=True, exist_ok=True)
        np.save(cache, pre)
    shipped = np.asarray(tok(corpus_splits()['train'], add_special_tokens=False).input_ids, dtype=np.uint16)
    return np.concatenate([pre] + [shipped] * r['shipped_repeat'])


def training_blocks(tok, r, steps, folder=PRETRAIN):
    "LongTensor [n, seq_len] of the recipe's training blocks (v1: the shipped split; v2: `pretrain_tokens`)."
    import torch
    from modelopt_nb.data import corpus_blocks

    if r['corpus'] == 'shipped':
        return corpus_blocks(tok, 'train', r['seq_len'], max_blocks=steps * r['batch_size']).input_ids
    ids = pretrain_tokens(tok, r, folder)
    n = len(ids) // r['seq_len']
    return torch.from_numpy(ids[: n * r['seq_len']].astype('int64')).view(n, r['seq_len'])


def _save_state(path, model, opt, step, log, r, seconds):
    "Write a resumable training state beside `path`, then move it into place (a killed run keeps its last state)."
    import torch
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + '.tmp')
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != 'lm_head.weight'}
    save_file(sd, str(tmp / 'model.safetensors'))
    torch.save(opt.state_dict(), tmp / 'optimizer.pt')
    (tmp / 'state.json').write_text(json.dumps(dict(step=step, recipe=r, seconds=seconds, loss_curve=log)))
    old = path.with_name(path.name + '.old')
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def _load_state(path, model, opt, r):
    "Restore a state written by `_save_state`; refuse one from another recipe. Returns (step, loss curve, seconds)."
    import torch
    from safetensors.torch import load_file

    st = json.loads((path / 'state.json').read_text())
    if st['recipe'] != r:
        raise SystemExit(f'{path} was written by another recipe: {st["recipe"]}')
    model.load_state_dict(load_file(str(path / 'model.safetensors')), strict=False)
    model.tie_weights()
    opt.load_state_dict(torch.load(path / 'optimizer.pt', weights_only=True))
    return st['step'], st['loss_curve'], st['seconds']


def train_model(
    name,
    device='cpu',
    tokens=None,
    threads=None,
    recipe='v1',
    resume=False,
    folder=PRETRAIN,
    save_every=None,
    micro_batch=None,
):
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM
    from modelopt_nb.core import describe

    if threads:
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    r = dict(RECIPES[recipe], recipe=recipe)
    r['tokens'] = tokens or r['tokens']
    if save_every:
        r['save_every'] = save_every
    tok = AutoTokenizer.from_pretrained(TOK_DIR)
    cfg = Qwen3Config(
        **COMMON, **SHAPES[name], bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    torch.manual_seed(r['seed'])
    model = Qwen3ForCausalLM(cfg).to(device)
    model.train()
    steps = r['tokens'] // (r['seq_len'] * r['batch_size'])
    data = training_blocks(tok, r, steps, folder)
    g = torch.Generator().manual_seed(r['seed'])
    # the budget may exceed one pass over the data: reshuffle each epoch
    epochs = math.ceil(steps * r['batch_size'] / len(data))
    order = torch.cat([torch.randperm(len(data), generator=g) for _ in range(epochs)])
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{'params': decay, 'weight_decay': r['weight_decay']}, {'params': no_decay, 'weight_decay': 0.0}],
        lr=r['lr'],
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    state, start, log, prev = RUNS / f'{name}.state', 0, [], 0.0
    if resume and state.exists():
        start, log, prev = _load_state(state, model, opt, r)
        print(f'{name}: resumed at step {start}', flush=True)
    cuda = device.startswith('cuda')
    micro = micro_batch or (r['batch_size'] if cuda else 16)  # a CPU holds 16 blocks' activations, not 256
    if r['batch_size'] % micro:
        raise SystemExit(f'--micro-batch {micro} must divide the batch of {r["batch_size"]}')
    print(
        f'{name}: {describe(model)}; {steps} steps of {r["batch_size"]}x{r["seq_len"]} on {device}; '
        f'{len(data):,} blocks ({epochs} passes)',
        flush=True,
    )
    t0 = time.time()
    for step in range(start, steps):
        ids = data[order[step * r['batch_size'] : (step + 1) * r['batch_size']]].to(device)
        for gr in opt.param_groups:
            gr['lr'] = lr_at(step, steps, r)
        opt.zero_grad(set_to_none=True)
        loss = 0.0
        for mb in ids.split(micro):  # equal micro-batches of whole blocks: the mean of their means is the batch's
            with torch.autocast('cuda', dtype=torch.bfloat16, enabled=cuda):
                part = model(input_ids=mb, labels=mb).loss * len(mb) / len(ids)
            part.backward()
            loss += part.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r['grad_clip'])
        opt.step()
        log.append(round(loss, 4))
        if step % 20 == 0 or step == steps - 1:
            el = time.time() - t0
            print(
                f'  step {step}/{steps} loss {loss:.4f} lr {lr_at(step, steps, r):.2e} '
                f'{(step + 1 - start) * r["batch_size"] * r["seq_len"] / el:.0f} tok/s',
                flush=True,
            )
        if r.get('save_every') and (step + 1) % r['save_every'] == 0 and step + 1 < steps:
            _save_state(state, model, opt, step + 1, log, r, prev + time.time() - t0)
    train_s = prev + time.time() - t0
    from safetensors.torch import save_file

    RUNS.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            k: v.detach().cpu().to(torch.bfloat16).contiguous()
            for k, v in model.state_dict().items()
            if k != 'lm_head.weight'
        },
        str(RUNS / f'{name}.safetensors'),
    )
    info = dict(
        name=name,
        recipe=r,
        steps=steps,
        train_tokens=steps * r['batch_size'] * r['seq_len'],
        data_tokens=len(data) * r['seq_len'],
        train_seconds=round(train_s, 1),
        device=device,
        device_name=(torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine()),
        torch=torch.__version__,
        command=' '.join(['python', 'tools/train_tiny.py', *sys.argv[1:]]),
        loss_curve=log,
    )
    (RUNS / f'{name}.json').write_text(json.dumps(info))
    shutil.rmtree(state, ignore_errors=True)  # the run is complete: its weights replace the resumable state
    print(f'{name}: trained in {train_s:.0f} s, final loss {sum(log[-20:]) / len(log[-20:]):.4f}', flush=True)
    return info


def finalize(name):
    "Store the trained weights in bfloat16 with the tokenizer, measure held-out perplexity, write the model card."
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM
    from modelopt_nb.data import corpus_blocks
    from modelopt_nb.evaluate import perplexity
    from modelopt_nb.core import describe, save_checkpoint

    info = json.loads((RUNS / f'{name}.json').read_text())
    r = info['recipe']
    tok = AutoTokenizer.from_pretrained(TOK_DIR)
    cfg = Qwen3Config(
        **COMMON, **SHAPES[name], bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model = Qwen3ForCausalLM(cfg)
    missing, unexpected = model.load_state_dict(load_file(str(RUNS / f'{name}.safetensors')), strict=False)
    assert not unexpected and all(k == 'lm_head.weight' for k in missing), (missing, unexpected)
    model.tie_weights()
    model = model.to(torch.bfloat16).eval()  # shipped precision
    ev = model.float()
    held = corpus_blocks(tok, 'heldout', r['seq_len'])
    res = perplexity(ev, held, batch_size=16, progress=False)
    prompt = 'It is a truth universally acknowledged, that'
    x = tok(prompt, return_tensors='pt').input_ids
    sample = tok.decode(ev.generate(x, max_new_tokens=40, do_sample=False)[0])
    out = ASSETS / 'models' / name
    info.update(
        params=describe(ev).total_params,
        shape=describe(ev).to_dict(),
        heldout=res.to_dict(),
        heldout_blocks=len(held),
        sample=sample,
    )
    model = model.to(torch.bfloat16)
    save_checkpoint(model, tok, out, overwrite=True, extra_files={'training.json': info, 'README.md': model_card(info)})
    print(json.dumps({k: v for k, v in info.items() if k != 'loss_curve'}, indent=1))
    return info


def _corpus_words(i):
    if i['recipe'].get('corpus', 'shipped') == 'shipped':
        return "the training split of the corpus shipped with modelopt_nb (Jane Austen's novels and the Brown corpus)"
    return (
        'the pretraining corpus that `tools/build_pretrain_corpus.py` builds from registry packages (sources and licences '
        "in `modelopt_nb/assets/corpus/ATTRIBUTION.md`) and the training split of the shipped corpus (Jane Austen's "
        f"novels and the Brown corpus), the latter counted {i['recipe']['shipped_repeat']} times"
    )


def model_card(i):
    s = i['shape']
    return f"""# {i['name']}

A {s['num_layers']}-layer Qwen3 (`Qwen3ForCausalLM`) trained from scratch by `tools/train_tiny.py` (recipe {i['recipe'].get('recipe', 'v1')}) on {_corpus_words(i)}.
It exists so that every tutorial and test runs on a laptop CPU, on a model whose layers have learned something. Part of [modelopt_nb](../../../../README.md); Apache-2.0.

| | |
|---|---|
| layers | {s['num_layers']} |
| hidden | {s['hidden_size']} |
| query heads / KV heads × head_dim | {s['num_heads']} / {s['num_kv_heads']} × {s['head_dim']} (grouped-query attention, q_norm/k_norm) |
| intermediate | {s['intermediate_size']} |
| vocab | {s['vocab_size']} (byte-level BPE trained on the same split), tied embeddings |
| parameters | {i['params']:,} |
| stored as | bfloat16 safetensors |
| training | {i['train_tokens']:,} tokens ({i['steps']} steps of {i['recipe']['batch_size']} × {i['recipe']['seq_len']}; {i.get('data_tokens', i['train_tokens']):,} tokens of text), AdamW lr {i['recipe']['lr']} cosine, seed {i['recipe']['seed']} |
| training time | {i['train_seconds']:.0f} s on {i['device']} ({i['device_name']}), torch {i['torch']} |
| held-out perplexity | {i['heldout']['perplexity']:.2f} (loss {i['heldout']['loss']:.4f} nats/token, {i['heldout']['tokens']:,} tokens) |
| held-out bits per byte | {i['heldout']['bits_per_byte']:.4f} |

Greedy sample (prompt "It is a truth universally acknowledged, that"):

> {i['sample'].replace(chr(10), ' ')}

Rebuild: `{i.get('command', 'python tools/train_tiny.py all')}`, then `python tools/train_tiny.py finalize {i['name']}`.
Training loss per step is in `training.json`.
"""


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=['tokenizer', 'tokens', 'all', 'finalize', *SHAPES])
    ap.add_argument('names', nargs='*', help='with finalize: the models to finalize (default: both)')
    ap.add_argument(
        '--train-only', action='store_true', help='train and write runs/tiny/NAME.* only (e.g. on a GPU machine)'
    )
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--tokens', type=int, default=None, help='override the recipe token budget (for a quick check)')
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--recipe', choices=sorted(RECIPES), default='v1')
    ap.add_argument(
        '--micro-batch',
        type=int,
        default=None,
        help='blocks per forward pass (default: the batch on a GPU, 16 on a CPU)',
    )
    ap.add_argument('--resume', action='store_true', help='continue from runs/tiny/NAME.state when it exists')
    ap.add_argument('--pretrain', default=str(PRETRAIN), help='the pretraining corpus folder (recipe v2)')
    ap.add_argument(
        '--save-every', type=int, default=None, help='steps between resumable states (runs/tiny/NAME.state)'
    )
    a = ap.parse_args()
    if a.what in ('tokenizer', 'all'):
        train_tokenizer()
    if a.what == 'tokens':  # tokenize recipe v2's stream once (cached in runs/tiny/), e.g. before a GPU run
        from transformers import AutoTokenizer

        ids = pretrain_tokens(AutoTokenizer.from_pretrained(TOK_DIR), RECIPES['v2'], a.pretrain)
        print(f'recipe v2 stream: {len(ids):,} tokens -> {sorted(RUNS.glob("pretrain-tokens-*.npy"))}')
    for name in SHAPES:
        if a.what in (name, 'all'):
            train_model(
                name, a.device, a.tokens, a.threads, a.recipe, a.resume, a.pretrain, a.save_every, a.micro_batch
            )
            if not a.train_only:
                finalize(name)
        if a.what == 'finalize' and (not a.names or name in a.names):
            finalize(name)
