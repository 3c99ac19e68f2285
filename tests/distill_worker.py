"""One small distillation run for tests/test_distill.py and tests/test_fsdp.py: single-process, under torchrun (2 CPU
processes, gloo), or killed after its first checkpoint (--hang-after-save) and resumed (--resume). Rank 0 writes the
loss curve and the final weights."""

import argparse, copy, gc, io, json, os, signal, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from transformers import TrainerCallback
from modelopt_nb.core import tiny_model, adapter
from modelopt_nb.distill import DistillConfig, distill


class HangAfterFirstSave(TrainerCallback):
    "Write a marker once the first checkpoint is complete, then wait to be killed."

    def __init__(self, marker):
        self.marker = Path(marker)

    def on_save(self, args, state, control, **kw):
        if args.process_index == 0:
            self.marker.write_text(str(state.global_step))
        time.sleep(600)


def kill_while_saving(step):
    "SIGKILL this process halfway through writing optimizer.pt of checkpoint-STEP (as a kill or a full disk would)."
    real = torch.save

    def save(obj, f, *args, **kw):
        p = Path(f) if isinstance(f, (str, os.PathLike)) else None
        if p is not None and p.name == 'optimizer.pt' and p.parent.name == f'checkpoint-{step}':
            buf = io.BytesIO()
            real(obj, buf, *args, **kw)
            p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return real(obj, f, *args, **kw)

    torch.save = save


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)  # run folder (checkpoints)
    ap.add_argument('--result', required=True)  # JSON written by rank 0: losses and final-weights file
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--batch', type=int, default=4)  # per process
    ap.add_argument('--save-steps', type=int, default=None)
    ap.add_argument('--hang-after-save', default=None)
    ap.add_argument('--kill-in-save', type=int, default=None)  # die while writing this step's checkpoint
    ap.add_argument('--resume', action='store_true')
    ap.add_argument('--features', action='store_true')
    ap.add_argument('--balance', default='dynamic')
    ap.add_argument('--fsdp', action='store_true')  # shard the student with FSDP2 (dropped, with a note, on 1 process)
    ap.add_argument('--save-model', default=None)  # rank 0 saves the returned student here with save_pretrained
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.kill_in_save:
        kill_while_saving(a.kill_in_save)
    world = int(os.environ.get('WORLD_SIZE', '1'))
    teacher = tiny_model(num_hidden_layers=4, seed=0)
    student = copy.deepcopy(teacher)
    adapter(student).set_layers([0, 1, 3])
    data = torch.randint(0, 256, (48, 32), generator=torch.Generator().manual_seed(1))
    targs = dict(use_cpu=True)
    if world > 1:
        targs['ddp_backend'] = 'gloo'
    cfg = DistillConfig(
        output_dir=a.out,
        max_steps=a.steps,
        batch_size=a.batch,
        learning_rate=2e-3,
        save_steps=a.save_steps,
        save_total_limit=None,
        features=a.features,
        balance=a.balance,
        warmup_steps=1,
        progress=False,
        fsdp=a.fsdp,
        trainer_args=targs,
    )
    cbs = [HangAfterFirstSave(a.hang_after_save)] if a.hang_after_save else []
    student, hist = distill(teacher, student, data, cfg, plan=[0, 1, 3], callbacks=cbs, resume=a.resume)
    if int(os.environ.get('RANK', '0')) == 0:
        from safetensors.torch import save_file

        if a.save_model:
            student.save_pretrained(a.save_model)

        wfile = str(Path(a.result).with_suffix('.safetensors'))
        save_file({k: v.detach().clone().contiguous() for k, v in student.state_dict().items()}, wfile)
        Path(a.result).write_text(
            json.dumps(dict(world=world, weights=wfile, history=[r for r in hist if 'loss' in r]))
        )


def teardown():
    "End the process group after the last reference to DDP is gone (else gloo threads may outlive the interpreter)."
    import torch.distributed as dist

    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    gc.collect()


if __name__ == '__main__':
    try:
        main()
    finally:
        teardown()
