"""Execute notebooks in place, keeping their outputs (plots, tables), skipping the cells `nbdev_test` skips: `#| eval: false`,
and `#| slow` / `#| gpu` unless --all. For the study and tutorial notebooks, whose outputs are part of the text.

    python tools/run_nb.py nbs/tutorials/02_qwen3_depth_36_to_24.ipynb [--all]
"""

import os, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.process import NBProcessor


def skipped(path, flags) -> set:
    "Indices of the cells of notebook `path` that nbdev_test would not run."
    out = set()
    for i, c in enumerate(NBProcessor(path, process=True).nb.cells):
        d = getattr(c, 'directives_', {}) or {}
        if c.cell_type != 'code' or d.get('eval:', [''])[0].lower() == 'false' or set(flags) & d.keys():
            out.add(i)
    return out


def main(argv):
    flags = () if '--all' in argv else ('slow', 'gpu')
    for p in (Path(a).resolve() for a in argv if not a.startswith('--')):
        skip = skipped(p, flags)
        nb = read_nb(p)
        idx = {id(c): i for i, c in enumerate(nb.cells)}
        cwd = os.getcwd()
        os.chdir(p.parent)
        wall, cpu = time.time(), time.process_time()
        try:
            CaptureShell(p).run_all(nb, exc_stop=True, preproc=lambda c: idx[id(c)] in skip)
        finally:
            os.chdir(cwd)
        write_nb(nb, p)
        print(f'{p}: executed ({len(skip)} cells skipped) in {time.time() - wall:.0f} s wall, '
              f'{time.process_time() - cpu:.0f} s CPU')


if __name__ == '__main__':
    main(sys.argv[1:])
