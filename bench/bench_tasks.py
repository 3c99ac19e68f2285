"""Scoring a shipped lm-eval task: `tasks.evaluate_tasks` on an in-memory model against the `lm-eval` command line on the
same saved model, task, batch size and limit. The CLI's cost includes its process start, model load and the build of its
task index (lm-eval's own tasks + ours); the index build is also timed on its own, in-process."""

import json, os, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
OFFLINE = dict(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1')
os.environ.update(OFFLINE)


def run(quick=False):
    from modelopt_nb.core import load_model, load_tokenizer, save_checkpoint
    from modelopt_nb.zoo import load_pretrained
    from modelopt_nb.tasks import evaluate_tasks, task_manager, tasks_dir

    task, bs, n = 'mnb_navigate', 16, (40 if quick else 200)
    with tempfile.TemporaryDirectory() as d:
        m, tok = load_pretrained('tiny-qwen3-36l')
        folder = save_checkpoint(m, tok, Path(d) / 'tiny-qwen3-36l')
        model, tok = load_model(folder), load_tokenizer(folder)
        t = time.perf_counter()
        task_manager()  # the shipped tasks only: what evaluate_tasks builds once per process
        t_index_shipped = time.perf_counter() - t
        t = time.perf_counter()
        task_manager(True)  # lm-eval's own tasks too: what the command line builds on every run
        t_index_full = time.perf_counter() - t
        t = time.perf_counter()
        r = evaluate_tasks(model, [task], tokenizer=tok, limit=n, batch_size=bs)
        t_api = time.perf_counter() - t
        out = Path(d) / 'out'
        cmd = [str(Path(sys.executable).parent / 'lm-eval'), 'run', '--model', 'hf']
        cmd += ['--model_args', f'pretrained={folder},dtype=float32', '--tasks', task]
        cmd += ['--include_path', str(tasks_dir()), '--device', 'cpu', '--batch_size', str(bs), '--limit', str(n)]
        cmd += ['--output_path', str(out)]
        t = time.perf_counter()
        p = subprocess.run(cmd, env={**os.environ, **OFFLINE}, capture_output=True, text=True)
        t_cli = time.perf_counter() - t
        if p.returncode:
            raise RuntimeError(p.stderr[-2000:])
        cli = json.loads(next(out.rglob('results_*.json')).read_text())['results'][task]['acc,none']
    case = f'tiny-qwen3-36l {task} limit {n} batch {bs}'
    same = abs(cli - r.score(task)) < 1e-9
    return [
        dict(case=case, metric='evaluate_tasks (in-memory, warm task index)', value=t_api, unit='s'),
        dict(case=case, metric='lm-eval CLI (process start, load, index, scoring)', value=t_cli, unit='s'),
        dict(
            case=case,
            metric='time ratio',
            value=t_api / t_cli,
            unit='',
            ratio=t_api / t_cli,
            ratio_of='evaluate_tasks s / lm-eval CLI s, one run',
            goal='<= 1.1',
        ),
        dict(case='task index', metric='build: shipped tasks only', value=t_index_shipped, unit='s'),
        dict(case='task index', metric="build: lm-eval's tasks + shipped", value=t_index_full, unit='s'),
        dict(case=case, metric='accuracy (API; CLI equal: %s)' % same, value=r.score(task), unit=''),
    ]


if __name__ == '__main__':
    for r in run(quick='--quick' in sys.argv):
        print(json.dumps(r))
