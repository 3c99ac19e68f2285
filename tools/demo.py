"""`make demo`: the main job on the embedded default, end to end, with what the library offers.

load tiny-qwen3-36l → describe → held-out perplexity → calibrate → depth-prune 36 → 24 layers → perplexity → a short logit
distillation from the 36-layer teacher → perplexity → save a plain transformers checkpoint → reload it with AutoModelForCausalLM.
Stages whose module is not installed are skipped with a note. Output folder: out/demo (replaced on each run).
"""

import importlib.util, json, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / 'out' / 'demo'


def have(mod):
    return importlib.util.find_spec(f'modelopt_nb.{mod}') is not None


def main():
    from modelopt_nb.zoo import load_pretrained
    from modelopt_nb.core import describe, save_checkpoint
    from modelopt_nb.data import corpus_blocks
    from modelopt_nb.evaluate import perplexity

    t0 = time.time()
    report = {}
    teacher, tok = load_pretrained('tiny-qwen3-36l')
    print('model:', describe(teacher))
    held = corpus_blocks(tok, 'heldout', seq_len=256, max_blocks=32)
    r = perplexity(teacher, held)
    print('held-out:', r)
    report['teacher'] = r.to_dict()
    student, extra = teacher, {}
    if have('calibrate') and have('depth'):
        from modelopt_nb.calibrate import calibrate
        from modelopt_nb.depth import prune_depth

        cal = calibrate(teacher, corpus_blocks(tok, 'calibration', seq_len=256, max_blocks=32))
        student, plan = prune_depth(teacher, num_layers=24, calibration=cal, metric='bi', policy='scattered')
        print('pruned:', describe(student))
        print('kept layers:', plan.kept)
        r = perplexity(student, held)
        print('held-out after pruning:', r)
        report['pruned'] = r.to_dict()
        from modelopt_nb.depth import DEPTH_PLAN_FILE

        extra[DEPTH_PLAN_FILE] = plan.to_dict()
    else:
        print('(depth pruning not available in this installation: skipped)')
    if have('distill') and student is not teacher:
        import shutil
        from modelopt_nb.distill import distill, DistillConfig

        run = ROOT / 'out' / 'demo-run'
        shutil.rmtree(run, ignore_errors=True)
        train = corpus_blocks(tok, 'train', seq_len=256, max_blocks=320)
        cfg = DistillConfig(
            output_dir=str(run),
            loss='kl',
            temperature=1.0,
            max_steps=40,
            batch_size=8,
            learning_rate=1e-3,
            warmup_steps=4,
            progress=True,
        )
        student, hist = distill(teacher, student, train, cfg, plan=plan)
        r = perplexity(student, held)
        print('held-out after distillation:', r)
        report['distilled'] = r.to_dict()
    if have('tasks'):  # lm-eval on shipped tasks: each score beside its chance level
        from modelopt_nb.tasks import compare_models

        cmp = compare_models(
            {'teacher': (teacher, tok), 'student': (student, tok)},
            tasks=['mnb_navigate', 'mnb_sports_understanding', 'mnb_corpus_cloze'],
            heldout=held,
            limit=50,
        )
        print(cmp._repr_markdown_())
        report['tasks'] = cmp.to_dict()
    p = save_checkpoint(student, tok, OUT, overwrite=True, extra_files={**extra, 'demo_report.json': report})
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(p)
    print(
        f'saved {p}; reloaded with plain transformers: {m.config.num_hidden_layers} layers; {time.time() - t0:.0f} s in all'
    )
    print(
        json.dumps(
            {
                k: {'perplexity': round(v['perplexity'], 2), 'bits_per_byte': round(v['bits_per_byte'], 4)}
                for k, v in report.items()
                if k != 'tasks'
            },
            indent=1,
        )
    )


if __name__ == '__main__':
    main()
