"""Engine backends and export: ONNX round trip, token equality with PyTorch, and the subprocess engines (vLLM,
TensorRT-LLM) on recorded outputs, through stand-in interpreters that print them."""

import json, os, stat, textwrap, warnings
from pathlib import Path

import pytest
import torch

from modelopt_nb.benchmark import (BACKENDS, EngineError, Workload, benchmark, engine_results, parse_engine_output,
                                   parse_trtllm_report, results_table, write_trtllm_dataset)
from modelopt_nb.core import tiny_model
from modelopt_nb.export import OnnxLM, export

DATA = Path(__file__).parent / 'data' / 'engines'


@pytest.fixture(scope='module')
def model():
    return tiny_model('qwen3', num_hidden_layers=2).eval()


@pytest.fixture(scope='module')
def onnx_dir(model, tmp_path_factory):
    os.environ['MODELOPT_NB_CACHE'] = str(tmp_path_factory.mktemp('cache'))
    return export(model, 'onnx', out=tmp_path_factory.mktemp('out') / 'tiny-onnx')


def _script(path: Path, body: str) -> str:
    path.write_text('#!/bin/sh\n' + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_export_folder(onnx_dir):
    names = {p.name for p in onnx_dir.iterdir()}
    assert {'model.onnx', 'export.json', 'config.json', 'README.md'} <= names
    assert 'modelopt_nb.export.export' in (onnx_dir / 'README.md').read_text()
    assert not [p for p in onnx_dir.parent.iterdir() if p.name.startswith('.')]  # nothing left beside


def test_onnx_first_32_tokens_equal_pytorch(model, onnx_dir):
    ids = Workload(prompt_len=16).prompts(model.config.vocab_size, 3)
    toks, ttft, total = OnnxLM(onnx_dir).generate(ids, 32)
    with torch.no_grad():
        ref = model.generate(ids, max_new_tokens=32, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert (torch.from_numpy(toks) == ref[:, 16:]).all() and 0 < ttft < total


def test_onnxruntime_backend_equals_eager(model, onnx_dir):
    ids = Workload(prompt_len=10).prompts(model.config.vocab_size, 2)
    ort_toks = BACKENDS['onnxruntime'].fn(model)(ids, 12)[0]     # found in the cache the export filled
    assert (ort_toks == BACKENDS['eager'].fn(model)(ids, 12)[0]).all()
    w = Workload(batch_sizes=(1, 2), prompt_len=8, output_len=6, repeats=1)
    res = benchmark(model, w, ('eager', 'onnxruntime'), progress=False)
    assert [r.backend for r in res] == ['eager', 'eager', 'onnxruntime', 'onnxruntime']
    assert res[2].engine.startswith('onnxruntime ') and res[2].total_tokens_per_s > res[2].output_tokens_per_s


def test_unsupported_architecture(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64))
    with pytest.raises(ValueError, match='Cannot export GPT2LMHeadModel to ONNX'):
        export(gpt2, 'onnx', out=tmp_path / 'x')
    assert not (tmp_path / 'x').exists()


W = Workload(batch_sizes=(1, 2), prompt_len=12, output_len=8, warmup=1, repeats=2)


def test_vllm_recorded_output(model):
    doc = parse_engine_output((DATA / 'vllm_runner_output.txt').read_text(), 'vllm')
    res = engine_results(doc, model, 'tiny', 'vllm', W)
    assert [r.batch for r in res] == [1, 2] and res[0].engine.startswith('vllm ')
    assert res[1].output_tokens_per_s == pytest.approx(2 * 8 / res[1].total_s)
    assert res[0].tpot_s == pytest.approx((res[0].total_s - res[0].ttft_s) / 7)
    with pytest.raises(EngineError, match='expected 1 of 4'):
        engine_results(doc, model, 'tiny', 'vllm', Workload(batch_sizes=(1, 2), prompt_len=12, output_len=4))


def test_vllm_recorded_tokens_equal_eager():
    doc = parse_engine_output((DATA / 'vllm_runner_output.txt').read_text(), 'vllm')
    m = tiny_model('qwen3', num_hidden_layers=3, head_dim=32)
    for row in doc['rows']:
        eager = BACKENDS['eager'].fn(m)(W.prompts(m.config.vocab_size, row['batch']), W.output_len)[0]
        assert eager.tolist() == row['tokens']


def test_vllm_through_a_subprocess(model, tmp_path):
    sample = DATA / 'vllm_runner_output.txt'
    py = _script(tmp_path / 'python', f'[ "$1" = "-c" ] && exit 0\necho "INFO loading"\ncat {sample}\n')
    res = benchmark({'tiny': model}, W, ('vllm',), progress=False, engine_python={'vllm': py})
    assert [(r.backend, r.batch, r.error) for r in res] == [('vllm', 1, ''), ('vllm', 2, '')]


def test_crashing_engine_keeps_other_rows(model, tmp_path):
    py = _script(tmp_path / 'python', '[ "$1" = "-c" ] && exit 0\necho "Traceback (most recent call last):"\n'
                 'echo "RuntimeError: Engine core initialization failed" >&2\nexit 1\n')
    with pytest.warns(UserWarning, match='vllm: failed: vllm exited with status 1: RuntimeError: Engine core init'):
        res = benchmark({'tiny': model}, W, ('eager', 'vllm'), progress=False, engine_python={'vllm': py})
    assert [r.backend for r in res] == ['eager', 'eager', 'vllm', 'vllm'] and res[0].ttft_s > 0
    assert res[2].ttft_s is None and 'Engine core initialization failed' in res[2].error
    garbage = _script(tmp_path / 'python2', '[ "$1" = "-c" ] && exit 0\necho "all done, no result"\n')
    with warnings.catch_warnings(record=True):
        res = benchmark({'tiny': model}, W, ('vllm',), progress=False, engine_python={'vllm': garbage})
    assert res[0].error.startswith('failed: vllm printed no result; last lines:') and 'all done' in res[0].error
    assert 'vllm printed no result' in results_table(res)


def _fake_vllm(root: Path, sizes) -> Path:
    "A stand-in `vllm` package whose CPU attention supports `sizes` (the runner's check reads the engine's own list)."
    pkg = root / 'vllm'
    (pkg / 'v1/attention/backends').mkdir(parents=True)
    (pkg / '__init__.py').write_text("__version__ = '0.0-test'\nLLM = SamplingParams = None\n")
    for d in ('v1', 'v1/attention', 'v1/attention/backends'): (pkg / d / '__init__.py').write_text('')
    (pkg / 'v1/attention/backends/cpu_attn.py').write_text(
        f'class CPUAttentionBackend:\n    get_supported_head_sizes = staticmethod(lambda: {list(sizes)})\n')
    return root


def test_vllm_runner_checks_head_size_first(model, tmp_path, monkeypatch):
    "On a CPU the real runner stops before starting the engine when vLLM has no attention kernel for the head size."
    import sys
    monkeypatch.setenv('PYTHONPATH', str(_fake_vllm(tmp_path / 'site', (32, 64))))
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    with pytest.warns(UserWarning, match=r"CPU attention supports head_dim \[32, 64\]; this model has 16"):
        res = benchmark({'tiny': model}, W, ('vllm',), progress=False, engine_python={'vllm': sys.executable})
    assert res[0].error.startswith("failed: vllm exited with status 1: ValueError: vllm 0.0-test's CPU attention")
    assert "this model has 16" in results_table(res).splitlines()[-1]


def test_engine_environment_found_from_a_subfolder(tmp_path, monkeypatch):
    "`make engines` writes .engines/NAME: the backend finds its Python from the project folder or any folder below."
    monkeypatch.delenv('MODELOPT_NB_VLLM_PYTHON', raising=False)
    py = tmp_path / '.engines/vllm/bin/python'
    py.parent.mkdir(parents=True); py.write_text('')
    (tmp_path / 'nbs/tutorials').mkdir(parents=True)
    monkeypatch.chdir(tmp_path / 'nbs/tutorials')
    assert BACKENDS['vllm'].python() == str(py)
    assert BACKENDS['vllm'].python({'vllm': '/x/python'}) == '/x/python'  # an explicit interpreter comes first
    assert BACKENDS['eager'].python() == ''


def test_unavailable_engines_say_why(model):
    names = ('MODELOPT_NB_VLLM_PYTHON', 'MODELOPT_NB_TENSORRT_LLM_PYTHON')
    env = {k: os.environ.pop(k) for k in names if k in os.environ}
    try:
        with pytest.warns(UserWarning, match='unavailable'):
            res = benchmark({'tiny': model}, W, ('tensorrt-llm',), progress=False)
    finally:
        os.environ.update(env)
    assert res[0].error == ('unavailable: set MODELOPT_NB_TENSORRT_LLM_PYTHON (or engine_python={'
                            "'tensorrt-llm': ...}) to a Python with tensorrt_llm")
    with pytest.raises(ValueError, match="backend 'trt' cannot run here: unknown"):
        benchmark(model, W, ('eager', 'trt'))


def test_trtllm_dataset_and_report(tmp_path):
    prompts = [[1, 2, 3], [4, 5, 6]]
    lines = write_trtllm_dataset(prompts, 8, tmp_path / 'd.jsonl', repeats=2).read_text().splitlines()
    assert [json.loads(x) for x in lines][3] == {'task_id': 3, 'input_ids': [4, 5, 6], 'output_tokens': 8}
    doc = parse_trtllm_report(json.loads((DATA / 'trtllm_report.json').read_text()), 2)
    r = doc['rows'][0]
    assert doc['engine'] == 'tensorrt-llm' and doc['version'] and doc['device'].startswith('NVIDIA')
    assert r['ttft_s'] == pytest.approx(0.01423) and r['output_tokens_per_s'] > 0
    with pytest.raises(EngineError, match="lacks 'streaming_metrics'"):
        parse_trtllm_report({'performance': {}, 'engine': {}}, 2)


def test_trtllm_through_a_subprocess(model, tmp_path):
    py = _script(tmp_path / 'python', '[ "$1" = "-c" ] && exit 0\n')
    _script(tmp_path / 'trtllm-bench', f'''
        while [ $# -gt 0 ]; do [ "$1" = "--report_json" ] && cp {DATA / "trtllm_report.json"} "$2"; shift; done
        echo "[TensorRT-LLM] benchmark done"
    ''')
    res = benchmark({'tiny': model}, W, ('tensorrt-llm',), progress=False, engine_python={'tensorrt-llm': py})
    assert [(r.batch, r.error) for r in res] == [(1, ''), (2, '')]
    assert res[0].output_tokens_per_s == pytest.approx(1843.2) and res[0].engine.startswith('tensorrt-llm ')


def test_export_command(model, tmp_path):
    "`modelopt-nb export FOLDER --format onnx --out DIR`: the artifact with its README and our marker; no overwrite."
    from modelopt_nb.cli import main
    from modelopt_nb.core import MARKER, save_checkpoint

    src = save_checkpoint(model, None, tmp_path / 'src')
    out = tmp_path / 'onnx'
    assert main(['export', str(src), '--out', str(out)]) == 0
    assert {'model.onnx', 'README.md', 'config.json', MARKER} <= {p.name for p in out.iterdir()}
    assert "OnnxLM('onnx')" in (out / 'README.md').read_text()
    assert main(['export', str(src), '--out', str(out)]) == 1  # a previous export is replaced only on request
    assert main(['export', str(src), '--out', str(src / 'inside')]) == 1  # never inside the source
