"""Train the zoo's tiny Qwen3 models from scratch on the training split of the shipped corpus.

One documented command builds both (seeded; under 60 minutes on 2 CPU cores in all, a minute or two on a GPU):

    .venv/bin/python tools/train_tiny.py all            # tokenizer, then tiny-qwen3-36l, then tiny-qwen3-4b-analog

or step by step: `tokenizer`, `tiny-qwen3-36l`, `tiny-qwen3-4b-analog` (add `--device cuda` on a GPU machine).
Training writes the weights (bfloat16, the shipped precision) and the loss curve to runs/tiny/NAME.*; `finalize NAME` (run by `all` and by each model
step unless --train-only) stores them in bfloat16 with the tokenizer, measures held-out perplexity and writes the model card.
Held-out text is never seen: the tokenizer and the model learn from `corpus_splits()['train']` only.
The weights are stored in bfloat16 (as Qwen3 checkpoints are) under modelopt_nb/assets/models/NAME, with a model card.
"""

import argparse, json, math, platform, sys, time
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
# the recipe (the same for both models)
RECIPE = dict(
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


def train_model(name, device='cpu', tokens=None, threads=None):
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM
    from modelopt_nb.data import corpus_blocks
    from modelopt_nb.core import describe

    if threads:
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    r = dict(RECIPE)
    r['tokens'] = tokens or r['tokens']
    tok = AutoTokenizer.from_pretrained(TOK_DIR)
    cfg = Qwen3Config(
        **COMMON, **SHAPES[name], bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    torch.manual_seed(r['seed'])
    model = Qwen3ForCausalLM(cfg).to(device)
    model.train()
    steps = r['tokens'] // (r['seq_len'] * r['batch_size'])
    data = corpus_blocks(tok, 'train', r['seq_len'], max_blocks=steps * r['batch_size'])
    g = torch.Generator().manual_seed(r['seed'])
    epochs = math.ceil(
        steps * r['batch_size'] / len(data)
    )  # the budget may exceed one pass over the split: reshuffle each epoch
    order = torch.cat([torch.randperm(len(data), generator=g) for _ in range(epochs)])
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{'params': decay, 'weight_decay': r['weight_decay']}, {'params': no_decay, 'weight_decay': 0.0}],
        lr=r['lr'],
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    print(f'{name}: {describe(model)}; {steps} steps of {r["batch_size"]}x{r["seq_len"]} on {device}', flush=True)
    log, t0 = [], time.time()
    for step in range(steps):
        ids = data.input_ids[order[step * r['batch_size'] : (step + 1) * r['batch_size']]].to(device)
        for gr in opt.param_groups:
            gr['lr'] = lr_at(step, steps, r)
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r['grad_clip'])
        opt.step()
        log.append(round(loss.item(), 4))
        if step % 20 == 0 or step == steps - 1:
            el = time.time() - t0
            print(
                f'  step {step}/{steps} loss {loss.item():.4f} lr {lr_at(step, steps, r):.2e} {(step + 1) * r["batch_size"] * r["seq_len"] / el:.0f} tok/s',
                flush=True,
            )
    train_s = time.time() - t0
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
        train_seconds=round(train_s, 1),
        device=device,
        device_name=(
            torch.cuda.get_device_name() if device.startswith('cuda') else platform.processor() or platform.machine()
        ),
        torch=torch.__version__,
        loss_curve=log,
    )
    (RUNS / f'{name}.json').write_text(json.dumps(info))
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


def model_card(i):
    s = i['shape']
    return f"""# {i['name']}

A {s['num_layers']}-layer Qwen3 (`Qwen3ForCausalLM`) trained from scratch by `tools/train_tiny.py` on the training split of the
corpus shipped with modelopt_nb (Jane Austen's novels and the Brown corpus). It exists so that every tutorial and test runs on a
laptop CPU, on a model whose layers have learned something. Part of [modelopt_nb](../../../../README.md); Apache-2.0.

| | |
|---|---|
| layers | {s['num_layers']} |
| hidden | {s['hidden_size']} |
| query heads / KV heads × head_dim | {s['num_heads']} / {s['num_kv_heads']} × {s['head_dim']} (grouped-query attention, q_norm/k_norm) |
| intermediate | {s['intermediate_size']} |
| vocab | {s['vocab_size']} (byte-level BPE trained on the same split), tied embeddings |
| parameters | {i['params']:,} |
| stored as | bfloat16 safetensors |
| training | {i['train_tokens']:,} tokens ({i['steps']} steps of {i['recipe']['batch_size']} × {i['recipe']['seq_len']}), AdamW lr {i['recipe']['lr']} cosine, seed {i['recipe']['seed']} |
| training time | {i['train_seconds']:.0f} s on {i['device']} ({i['device_name']}), torch {i['torch']} |
| held-out perplexity | {i['heldout']['perplexity']:.2f} (loss {i['heldout']['loss']:.4f} nats/token, {i['heldout']['tokens']:,} tokens) |
| held-out bits per byte | {i['heldout']['bits_per_byte']:.4f} |

Greedy sample (prompt "It is a truth universally acknowledged, that"):

> {i['sample'].replace(chr(10), ' ')}

Rebuild: `.venv/bin/python tools/train_tiny.py all` (add `--device cuda` on a GPU). Training loss per step is in `training.json`.
"""


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=['tokenizer', 'all', 'finalize', *SHAPES])
    ap.add_argument('names', nargs='*', help='with finalize: the models to finalize (default: both)')
    ap.add_argument(
        '--train-only', action='store_true', help='train and write runs/tiny/NAME.* only (e.g. on a GPU machine)'
    )
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--tokens', type=int, default=None, help='override the recipe token budget (for a quick check)')
    ap.add_argument('--threads', type=int, default=None)
    a = ap.parse_args()
    if a.what in ('tokenizer', 'all'):
        train_tokenizer()
    for name in SHAPES:
        if a.what in (name, 'all'):
            train_model(name, a.device, a.tokens, a.threads)
            if not a.train_only:
                finalize(name)
        if a.what == 'finalize' and (not a.names or name in a.names):
            finalize(name)
