"""Training of the sketch face locator (models.locator).

    python -m facesketch.models.train locator --landmarks ~/.cache/facesketch/landmarks \
        --made ~/.cache/facesketch/made-sketches --out ~/.cache/facesketch/train/locator [--steps N] [--resume] [--export]
        [--init-from WEIGHTS] [--artist-points sketch|photo]

Samples are synthesised on the fly (models.data.locator_samples) by a worker process while the main process
trains. Losses as CenterNet's: penalty-reduced focal loss on the face-centre and landmark heatmaps, L1 on the
sub-cell offsets and the log face size at the true cells. STATEDIR holds last.pt (model, optimiser, step;
weights_only), log.tsv and log.txt; SIGTERM / Ctrl-C save and stop. `--export` writes the fp16 safetensors
(default models/weights/locator.safetensors).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from . import locator as L
from .paths import SHIPPED_WEIGHTS_DIR, cache_dir
from .training import Checkpointer, Logger, stop_on_signal

WEIGHTS_FILE = "locator.safetensors"


class SampleStream(torch.utils.data.IterableDataset):
    def __init__(self, args, seed: int):
        self.args, self.seed = args, seed

    def __iter__(self):
        from .data.locator_samples import Sampler, Sources, targets
        info = torch.utils.data.get_worker_info()
        seed = self.seed + (info.id if info else 0) * 1_000_003
        src = Sources(self.args.landmarks, self.args.made, "train", roots={"fs2k": self.args.fs2k,
                                                                          "celeba": self.args.celeba},
                      artist_weight=self.args.artist_weight, artist_points=self.args.artist_points)
        sampler = Sampler(src, seed=seed)
        while True:
            batch = [sampler.sample() for _ in range(self.args.batch)]
            x = torch.from_numpy(np.stack([b[0] for b in batch])[:, None])
            yield x, targets([b[1] for b in batch])


def _ignore_stop_signals(_worker_id):
    """Sample makers leave SIGTERM / Ctrl-C to the trainer (a `pkill` reaches them too), which saves and then
    shuts them down; a worker dying first would end the run without a checkpoint."""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def focal_loss(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of peaks."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p ** 2 * (1 - gt) ** 4 * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp_min(1.0)


def losses(out: torch.Tensor, tg: dict) -> dict:
    heat = tg["heat"]
    l_centre = focal_loss(out[:, L.CH_CENTRE:L.CH_CENTRE + 1], heat[:, :1])
    l_points = focal_loss(out[:, L.CH_HEAT], heat[:, 1:])
    idx, val = tg["reg_idx"], tg["reg_val"]
    if len(idx):
        pred = out[idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3]]
        err = (pred - val).abs()
        is_size = idx[:, 1] == L.CH_SIZE
        l_size = err[is_size].mean() if is_size.any() else out.sum() * 0
        l_off = err[~is_size].mean() if (~is_size).any() else out.sum() * 0
    else:
        l_size = l_off = out.sum() * 0
    return {"centre": l_centre, "points": l_points, "size": l_size, "offset": l_off}


def export(model, path: str, step: int, threshold: float) -> str:
    L.save(model, path, threshold, {"step": step})
    return path


def run(args) -> int:
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    log = Logger(args.out)
    model = L.SketchFaceLocator()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ckpt = Checkpointer(os.path.join(args.out, "last.pt"), every_s=args.save_every_s)
    step = 0
    if args.resume and ckpt.exists():
        state = ckpt.load()
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        log(f"resumed at step {step}")
    elif args.init_from:
        model.load_state_dict(L.read_model(args.init_from)[0].state_dict())
        log(f"a new run from the weights {args.init_from}")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"locator: {n_params / 1e3:.0f}k params, batch {args.batch}, lr {args.lr}, steps to {args.steps}")

    def lr_at(s):  # warm-up, then cosine to 5 % of the peak
        if s < 200:
            return args.lr * (s + 1) / 200
        t = min(1.0, (s - 200) / max(1, args.steps - 200))
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    stream = torch.utils.data.DataLoader(SampleStream(args, seed=args.seed + step), batch_size=None,
                                         num_workers=args.workers, prefetch_factor=4 if args.workers else None,
                                         persistent_workers=bool(args.workers), worker_init_fn=_ignore_stop_signals)

    def save():
        ckpt.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step})

    model.train()
    log.start()
    with stop_on_signal() as stop:
        for x, tg in stream:
            if step >= args.steps or stop.now:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            ls = losses(model(x), tg)
            total = ls["centre"] + ls["points"] + 0.5 * ls["size"] + ls["offset"]
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            step += 1
            log.add({k: float(v.detach()) for k, v in ls.items()})
            if step % args.log_every == 0:
                log.scalars(step)
            if ckpt.due(step):
                save()
        log.scalars(step)
        save()
        log(f"{'stopped' if stop.now else 'done'} at step {step}: {ckpt.path}")
    if args.export:
        model.eval()
        log(f"exported {export(model, args.export_path, step, args.threshold)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m facesketch.models.train locator", description=__doc__.split("\n\n")[0])
    ap.add_argument("--landmarks", default=cache_dir("landmarks"), help="models.data.landmarks output folder")
    ap.add_argument("--made", default=cache_dir("made-sketches"), help="models.data.made_sketches output folder")
    ap.add_argument("--fs2k", help="FS2K folder, when not where the landmarks were made")
    ap.add_argument("--celeba", help="CelebA-6k folder, when not where the landmarks were made")
    ap.add_argument("--out", default=cache_dir("train", "locator"))
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="sample-making processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--artist-weight", type=float, default=1.0,
                    help="share of the artists' sketches relative to each kind of made sketch")
    ap.add_argument("--artist-points", choices=("sketch", "photo"), default="sketch",
                    help="the artists' sketches' landmarks: their own, registered onto the photo "
                         "(models.data.sketch_register; the photo's where it found no match), or the photo's")
    ap.add_argument("--init-from", metavar="WEIGHTS",
                    help="start a new run (step 0, fresh optimiser) from exported locator weights")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--save-every-s", type=float, default=180.0)
    ap.add_argument("--export", action="store_true")
    ap.add_argument("--export-path", default=os.path.join(SHIPPED_WEIGHTS_DIR, WEIGHTS_FILE))
    ap.add_argument("--threshold", type=float, default=0.3, help="face score threshold stored with the weights")
    return ap


def main(argv=None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
