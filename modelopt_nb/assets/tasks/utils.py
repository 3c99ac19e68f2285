"""Loader of the shipped lm-eval tasks: reads `data/<task>.jsonl.gz` beside this file, with no network access.

Each task YAML names it as `custom_dataset: !function utils.load` with `dataset_kwargs: {file: data/<task>.jsonl.gz}`.
Standalone (standard library + `datasets`), so `lm-eval run --include_path <this folder>` works without modelopt_nb.
"""

import gzip, json
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = {'multiple_choice': ('query', 'choices', 'label'), 'cloze': ('context', 'target')}


def read_items(path) -> list:
    "The items of a gzip (or plain) JSONL task file; a malformed line is an error naming the file and the line."
    path = Path(path)
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b'\x1f\x8b' else raw).decode('utf-8')
    items = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            it = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}, line {i}: not valid JSON ({e.msg})') from None
        kind = 'multiple_choice' if 'choices' in it else 'cloze'
        missing = [f for f in FIELDS[kind] if f not in it]
        if missing:
            raise ValueError(f'{path}, line {i}: missing field(s) {missing} of a {kind} item')
        if kind == 'multiple_choice' and not 0 <= it['label'] < len(it['choices']):
            raise ValueError(f'{path}, line {i}: label {it["label"]} is not an index of its {len(it["choices"])} choices')
        items.append(it)
    if not items:
        raise ValueError(f'{path}: no items')
    return items


def load(file=None, **kwargs):
    "A `datasets.DatasetDict` with one `test` split: the items of `file` (relative to this folder)."
    import datasets

    return datasets.DatasetDict({'test': datasets.Dataset.from_list(read_items(HERE / file))})
