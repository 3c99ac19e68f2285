"""How faithful a miniature the embedded teacher is: the three lessons of the course, measured on two texts.

The tutorials teach, on `tiny-qwen3-36l`, what is true of a real model such as Qwen3-8B. This benchmark checks that the
shipped teacher shows each lesson clearly, on the corpus' held-out split and on a text from outside the corpus (the
Wikipedia sample of the gensim wheel, as in `bench/peers.py`):

1. **The metric matters.** Removing the 12 layers that block influence rates least raises perplexity by at most half the
   median increase of 5 random 12-layer drops (first and last layer kept, as the metric keeps them).
2. **The teacher teaches.** Logit distillation of the 24-layer student beats plain LM fine-tuning of the same student on
   the same tokens (mean of the seeds).
3. **Pruned and distilled beats trained small.** The distilled 24-layer student has lower bits per byte than the shipped
   4B analog (`tiny-qwen3-4b-analog`), by more than the spread (max - min) of the distillation seeds.

Every choice (the layers) is made on calibration text; both texts only report. Run: `python bench/miniature.py`
(`make miniature`; about 15 minutes on 2 CPU cores). Writes `bench/miniature.json` and `bench/miniature.md`.
"""

import argparse, json, platform, random, statistics, sys, tempfile, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'bench')]

from modelopt_nb.calibrate import calibrate  # noqa: E402
from modelopt_nb.data import corpus_blocks, token_blocks  # noqa: E402
from modelopt_nb.depth import drop_layers, prune_depth  # noqa: E402
from modelopt_nb.distill import DistillConfig, distill  # noqa: E402
from modelopt_nb.evaluate import perplexity  # noqa: E402
from modelopt_nb.zoo import load_pretrained  # noqa: E402

# the distillation budget of the depth tutorial and the distillation study: 60 steps of 8 x 128 tokens
SEQ, BATCH, STEPS, LR, WARMUP = 128, 8, 60, 1e-3, 6


def eval_texts(tok, n_blocks):
    "The two report texts as token blocks of 256: the held-out split and the outside text."
    from peers import outside_text

    return {
        'heldout': corpus_blocks(tok, 'heldout', seq_len=256, max_blocks=n_blocks),
        'outside': token_blocks(tok, outside_text(), seq_len=256, max_blocks=n_blocks),
    }


def measure(model, texts) -> dict:
    "Perplexity and bits per byte of `model` on each report text."
    out = {}
    for k, b in texts.items():
        r = perplexity(model, b, progress=False)
        out[k] = dict(ppl=r.perplexity, bpb=r.bits_per_byte, loss=r.loss)
    return out


def depth_lesson(teacher, cal, texts, draws=5, k=12) -> dict:
    "Measure 1: block influence's 24 layers against random 12-layer drops."
    L = len(teacher.model.layers)
    student, plan = prune_depth(teacher, L - k, calibration=cal, metric='bi', progress=False)
    rand = []
    for s in range(draws):
        removed = sorted(random.Random(s).sample(range(1, L - 1), k))
        rand.append(dict(removed=removed, **measure(drop_layers(teacher, removed)[0], texts)))
    return dict(bi=dict(removed=plan.removed, **measure(student, texts)), random=rand), student, plan


def train_student(teacher, student, plan, train, seed, kd: bool):
    "Logit KD (kd=True) or plain LM fine-tuning of a copy of `student` with the study's budget and one seed."
    import copy

    s = copy.deepcopy(student)
    kw = dict(loss='kl') if kd else dict(kd_weight=0.0, ce_weight=1.0)
    with tempfile.TemporaryDirectory() as d:
        cfg = DistillConfig(
            output_dir=d,
            max_steps=STEPS,
            batch_size=BATCH,
            learning_rate=LR,
            warmup_steps=WARMUP,
            seed=seed,
            progress=False,
            **kw,
        )
        s, _ = distill(teacher if kd else None, s, train, cfg, plan=plan)
    return s


def verdicts(res) -> dict:
    "The three measures from the raw results, per text."
    out = {}
    for t in ('heldout', 'outside'):
        base = res['teacher'][t]['ppl']
        bi = res['depth']['bi'][t]['ppl'] - base
        med = statistics.median(r[t]['ppl'] for r in res['depth']['random']) - base
        kd = [r[t]['bpb'] for r in res['kd']]
        ft = [r[t]['bpb'] for r in res['ft']]
        gap = res['analog'][t]['bpb'] - statistics.mean(kd)
        out[t] = dict(
            bi_increase=bi,
            random_median_increase=med,
            bi_over_random=bi / med,
            metric_matters=bi <= 0.5 * med,
            kd_bpb=statistics.mean(kd),
            ft_bpb=statistics.mean(ft),
            teacher_teaches=statistics.mean(kd) < statistics.mean(ft),
            analog_minus_student_bpb=gap,
            seed_spread_bpb=max(kd) - min(kd),
            student_beats_analog=gap > max(kd) - min(kd),
        )
    return out


def table(res) -> str:
    v, T = res['verdicts'], ('heldout', 'outside')
    card = res['teacher_card']
    met = lambda ok: 'met' if ok else 'not met'
    row = lambda label, goal, cell: f'| {label} | {goal} | ' + ' | '.join(cell(t) for t in T) + ' |'
    lines = [
        '# The embedded teacher as a miniature: the three lessons',
        '',
        'Written by `make miniature` (`python bench/miniature.py`). Teacher `tiny-qwen3-36l`, trained on '
        f'{card["train_tokens"]:,} tokens ({card["recipe"].get("recipe", "v1")}); analog `tiny-qwen3-4b-analog`. '
        'Layers chosen on calibration text (32 x 256 tokens); the two texts only report, 32 x 256 tokens each: the '
        "corpus' held-out split, and the Wikipedia sample of the gensim wheel (outside the corpus). Distillation and "
        f'fine-tuning: {STEPS} steps of {BATCH} x {SEQ} tokens of the training split, learning rate {LR}, seeds '
        f'{res["seeds"]}.',
        '',
        f'- machine: {res["machine"]}; {res["seconds"]:.0f} s in all',
        '',
        '| measure | goal | held-out split | outside text |',
        '|---|---|---|---|',
        row('teacher perplexity', '', lambda t: f'{res["teacher"][t]["ppl"]:.2f}'),
        row(
            '1. bi 24 layers: perplexity increase', '≤ half the random median', lambda t: f'+{v[t]["bi_increase"]:.1f}'
        ),
        row(
            '1. random 12-layer drops: median increase (5 draws)',
            '',
            lambda t: f'+{v[t]["random_median_increase"]:.1f}',
        ),
        row(
            '1. bi / random median', '≤ 0.5', lambda t: f'{v[t]["bi_over_random"]:.2f} ({met(v[t]["metric_matters"])})'
        ),
        row('2. logit KD: bits/byte (mean of seeds)', 'lower than fine-tuning', lambda t: f'{v[t]["kd_bpb"]:.4f}'),
        row('2. LM fine-tuning: bits/byte (mean of seeds)', '', lambda t: f'{v[t]["ft_bpb"]:.4f}'),
        row('2. KD beats fine-tuning', 'yes', lambda t: met(v[t]['teacher_teaches'])),
        row('3. analog bits/byte', '', lambda t: f'{res["analog"][t]["bpb"]:.4f}'),
        row(
            '3. analog − distilled student, bits/byte',
            '> seed spread',
            lambda t: f'{v[t]["analog_minus_student_bpb"]:+.4f} (spread {v[t]["seed_spread_bpb"]:.4f}; '
            f'{met(v[t]["student_beats_analog"])})',
        ),
        '',
        'Perplexities of the random drops (held-out / outside): '
        + '; '.join(f'{r["heldout"]["ppl"]:.1f} / {r["outside"]["ppl"]:.1f}' for r in res['depth']['random'])
        + f'. Block influence removed layers {res["depth"]["bi"]["removed"]}.',
        '',
    ]
    return '\n'.join(lines)


def main(seeds=(0, 1, 2), n_blocks=32, out=ROOT / 'bench' / 'miniature'):
    t0 = time.time()
    torch.manual_seed(0)
    teacher, tok = load_pretrained('tiny-qwen3-36l', dtype='fp32')
    analog, _ = load_pretrained('tiny-qwen3-4b-analog', dtype='fp32')
    texts = eval_texts(tok, n_blocks)
    cal = calibrate(teacher, corpus_blocks(tok, 'calibration', seq_len=256, max_blocks=32), progress=False)
    res = dict(teacher=measure(teacher, texts), analog=measure(analog, texts), seeds=list(seeds))
    res['depth'], student, plan = depth_lesson(teacher, cal, texts)
    print('depth lesson done', f'{time.time() - t0:.0f} s', flush=True)
    train = corpus_blocks(tok, 'train', seq_len=SEQ, max_blocks=STEPS * BATCH)
    for key, kd in (('kd', True), ('ft', False)):
        res[key] = [measure(train_student(teacher, student, plan, train, s, kd), texts) for s in seeds]
        print(key, 'done', f'{time.time() - t0:.0f} s', flush=True)
    card = json.loads((ROOT / 'modelopt_nb/assets/models/tiny-qwen3-36l/training.json').read_text())
    res['teacher_card'] = {k: card[k] for k in ('train_tokens', 'recipe', 'device_name')}
    res['verdicts'] = verdicts(res)
    res['seconds'] = time.time() - t0
    res['machine'] = f'{platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}'
    Path(f'{out}.json').write_text(json.dumps(res, indent=1))
    Path(f'{out}.md').write_text(table(res))
    print(table(res))


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--blocks', type=int, default=32, help='blocks of 256 tokens per report text')
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'miniature'), help='output path without suffix')
    a = ap.parse_args()
    main(tuple(a.seeds), a.blocks, a.out)
