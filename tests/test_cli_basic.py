"The `modelopt-nb` command as a user runs it: a separate process, a zoo name, clean errors."

import json, subprocess, sys
from pathlib import Path

EXE = str(Path(sys.executable).parent / 'modelopt-nb')


def run(*args, timeout=300):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_stop():
    r = run('--help')
    assert r.returncode == 0
    for sub in ('calibrate', 'prune-depth', 'prune-width', 'distill', 'eval', 'bench', 'run'):
        assert sub in r.stdout


def test_describe_default():
    r = run('describe', 'tiny-qwen3-36l')
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout[r.stdout.index('{') :])
    assert (d['num_layers'], d['hidden_size'], d['num_heads'], d['num_kv_heads']) == (36, 128, 8, 2)


def test_eval_writes_json(tmp_path):
    out = tmp_path / 'r.json'
    r = run('eval', 'tiny-qwen3-36l', '--blocks', '2', '--seq-len', '128', '--json', str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d['tokens'] == 2 * 127 and 1 < d['perplexity'] < 1000 and d['bits_per_byte'] > 0


def test_bad_model_is_a_clean_error():
    r = run('describe', 'no-such-model')
    assert r.returncode == 1 and 'Known names' in r.stderr and 'Traceback' not in r.stderr
    r = run('eval', '/no/such/folder')
    assert r.returncode == 1 and 'No such model folder' in r.stderr


def test_unknown_subcommand():
    r = run('frobnicate')
    assert r.returncode == 2 and 'unknown subcommand' in r.stderr


def test_bench_pruned_against_default(tmp_path):
    "`modelopt-nb bench`: a depth-pruned folder against the default, one table with the default as baseline, JSON out."
    pruned = tmp_path / 'p24'
    r = run(
        'prune-depth',
        'tiny-qwen3-36l',
        '--num-layers',
        '24',
        '--metric',
        'bi',
        '--samples',
        '4',
        '--seq-len',
        '64',
        '--out',
        str(pruned),
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / 'b.json'
    r = run(
        'bench',
        'tiny-qwen3-36l',
        str(pruned),
        '--prompt-len',
        '16',
        '--output-len',
        '4',
        '--batch',
        '1',
        '2',
        '--repeats',
        '1',
        '--warmup',
        '0',
        '--quiet',
        '--out',
        str(out),
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())['results']
    assert [(x['layers'], x['batch']) for x in rows] == [(36, 1), (36, 2), (24, 1), (24, 2)]
    assert all(x['output_tokens_per_s'] > 0 and 0 < x['ttft_s'] < x['total_s'] for x in rows)
    assert '× tiny-qwen3-36l' in r.stdout
    from modelopt_nb.benchmark import available
    if not available('vllm')[0]:   # where `make engines` installed vLLM the backend can run (see tests/test_engines.py)
        r = run('bench', 'tiny-qwen3-36l', '--backend', 'vllm')
        assert r.returncode == 1 and "backend 'vllm' cannot run here" in r.stderr


def test_run_recipe(tmp_path):
    "`modelopt-nb run RECIPE`: depth-prune, distil briefly, evaluate, save; report and plain transformers checkpoint."
    recipe = tmp_path / 'r.yaml'
    recipe.write_text(
        f"model: tiny-qwen3-36l\noutput: {tmp_path / 'run'}\ncalibration: {{samples: 4, seq_len: 64}}\n"
        "prune:\n  - depth: {num_layers: 20, policy: contiguous, metric: angular}\n"
        "distill: {max_steps: 2, batch_size: 2, seq_len: 64}\n"
        "evaluate: {blocks: 2, seq_len: 64, tasks: [mnb_navigate], limit: 4}\n"
    )
    r = run('run', str(recipe), '--quiet')
    assert r.returncode == 0, r.stderr
    assert '| distilled | 20 |' in r.stdout
    rec = json.loads((tmp_path / 'run' / 'report.json').read_text())
    assert [s['layers'] for s in rec['stages']] == [36, 20, 20]
    assert all(s['tasks'][0]['task'] == 'mnb_navigate' and s['tasks'][0]['n'] == 4 for s in rec['stages'])
    assert '## Tasks' in (tmp_path / 'run' / 'report.md').read_text()  # every stage scored, chance beside
    removed = sorted(
        set(range(36)) - set(rec['stages'][1]['plan']['kept'])
    )  # one contiguous block of 16, first and last kept
    assert removed == list(range(removed[0], removed[0] + 16)) and 1 <= removed[0] and removed[-1] <= 34
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path / 'run' / 'model').num_hidden_layers == 20
    from modelopt_nb.depth import load_depth_plan  # the plan lies where `distill --features` and `gap` look for it

    assert load_depth_plan(tmp_path / 'run' / 'model').kept == rec['stages'][1]['plan']['kept']
    r = run('run', str(recipe), '--quiet')  # the output folder now holds a run: refused, nothing lost
    assert r.returncode == 1 and 'exists and is not empty' in r.stderr
    r = run('run', str(recipe), '--quiet', '--resume')  # a finished run: nothing to resume
    assert r.returncode == 1 and 'is finished' in r.stderr
    bad = tmp_path / 'bad.yaml'
    bad.write_text("model: tiny-qwen3-36l\noutput: x\nprune:\n  - deph: {}\n")
    r = run('run', str(bad))
    assert r.returncode == 1 and 'prune step 0 must be' in r.stderr


def test_shipped_recipes_are_valid(tmp_path, monkeypatch):
    from modelopt_nb.pipeline import load_recipe

    monkeypatch.chdir(tmp_path)  # their outputs are relative: a run already made in the checkout's out/ must not matter
    for f in sorted((Path(__file__).parents[1] / 'recipes').glob('*.yaml')):
        r = load_recipe(f)
        assert r['model'] and r['prune'], f


def test_eval_tasks(tmp_path):
    "`modelopt-nb eval --tasks`: shipped tasks with chance levels, written to --out; hub tasks offline: one line."
    out = tmp_path / 'ev'
    r = run('eval', 'tiny-qwen3-36l', '--blocks', '2', '--seq-len', '64', '--tasks', 'mnb_navigate', '--limit', '4',
            '--out', str(out))
    assert r.returncode == 0, r.stderr
    assert '| mnb_navigate | acc |' in r.stdout and 'chance' in r.stdout
    rows = json.loads((out / 'tasks.json').read_text())['rows']
    assert rows[0]['n'] == 4 and rows[0]['chance'] == 0.5
    assert json.loads((out / 'perplexity.json').read_text())['perplexity'] > 1
    r = run('eval', 'tiny-qwen3-36l', '--tasks', 'mmlu')
    assert r.returncode == 1 and 'Shipped tasks: mnb_' in r.stderr and 'Traceback' not in r.stderr
