"""Write README.md from nbs/index.ipynb (nbdev's own README command needs Quarto, which is not installable here).

Hidden cells (`#| hide`) are dropped, `#|` directives are removed, code cells become fenced Python, and text outputs stored in the
notebook are shown below their cell (not stderr: progress bars and warnings). `make test` fails when README.md is not what this script writes.
"""

import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def directives(src):
    return [l for l in src.splitlines() if l.lstrip().startswith('#|')]


def render(nb):
    out = [
        '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, then run `make readme`. -->',
        '',
    ]
    for c in nb['cells']:
        src = ''.join(c['source'])
        d = ' '.join(directives(src))
        if 'hide' in d or 'exporti' in d:
            continue
        body = '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith('#|')).strip('\n')
        if c['cell_type'] == 'markdown':
            out += [body, '']
        elif c['cell_type'] == 'code' and body.strip():
            out += ['```python', body, '```', '']
            for o in c.get('outputs', []):
                if o.get('name') == 'stderr':
                    continue  # progress bars and warnings
                text = (
                    ''.join(o.get('text', ''))
                    if o.get('output_type') == 'stream'
                    else ''.join(o.get('data', {}).get('text/plain', ''))
                )
                if text.strip():
                    out += ['```', text.rstrip('\n'), '```', '']
    return '\n'.join(out).rstrip('\n') + '\n'


if __name__ == '__main__':
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())
    text = render(nb)
    readme = ROOT / 'README.md'
    if '--check' in sys.argv:
        sys.exit(0 if readme.exists() and readme.read_text() == text else 1)
    if not readme.exists() or readme.read_text() != text:
        readme.write_text(text)
