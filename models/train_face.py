"""Training of the DeepFaceDrawing face model on the FS2K pack (reached as `python -m facesketch.models.train face ...`).

    python -m facesketch.models.train face --data PACK --out STATEDIR [--config lite] [--stage 1|2] [--steps N] [--resume]
    python -m facesketch.models.train face --data PACK --out STATEDIR --export models/weights/face_lite.safetensors

Stage 1: the five component auto-encoders (encoder + image decoder) on sketch reconstruction (L1 + L2), with
small shifts and stroke thickening so both careful and rough lines land near each other in latent space.
Stage 2: encoders frozen; feature-mapping decoders + generator as a conditional GAN (pix2pixHD style: two-scale
PatchGAN discriminator, LSGAN, discriminator feature matching, L1 to the photo; no VGG, none is available).

Training pairs: FS2K train photos with their artist sketch (3 styles) plus synthetic sketches made from the
photos with models.pencil (a careful pencil rendering and a rough one). The feature bank shipped with the
weights holds the stage-1 encoders' latents of all these training sketches, with gender labels.

State lives in STATEDIR, outside the repository: stage1.pt / stage2.pt (written atomically every few minutes
and when the run is stopped with SIGTERM or Ctrl-C, read with weights_only=True; --resume continues from the
stage's one), latents.pt (the training sketches' stage-1 latents, stored with the stage-1 step and a hash of
the encoders' weights and of the sketches, re-encoded when they differ), the cached synthetic sketches,
samples/, log.txt and log_stage1.tsv / log_stage2.tsv. The shared pieces are in models/training.py, the
discriminators and GAN losses in models/discriminators.py.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .deepfacedrawing import COMPONENTS, DeepFaceDrawing, get_config, save_safetensors
from .discriminators import MultiscaleDiscriminator, feature_matching, lsgan
from .training import (Amp, Checkpointer, Logger, frozen, load_checkpoint, save_atomic, save_grid, state_digest,
                       stop_on_signal, to_u8)

DEFAULT_STATE = os.path.join(os.path.expanduser("~"), ".cache", "facesketch", "train", "face_lite")


# ---------------------------------------------------------------------------------------------- data

def synthetic_sketches(photos: np.ndarray, ids: list[str], cache: str, log=print) -> dict[str, np.ndarray]:
    """{"pencil": (N,S,S) uint8, "rough": ...} made from the photos by models.pencil (seeded by the item id),
    cached per item id in `cache` (npz), so a growing pack only computes its new items. Empty when the
    pencil module is not available."""
    try:
        from . import pencil
    except ImportError:
        log("models.pencil not available: training on artist sketches only")
        return {}
    known: dict[str, dict[str, np.ndarray]] = {}
    if os.path.isfile(cache):
        with np.load(cache) as z:  # read each array once (every z[key] access decodes the whole array)
            cached = {k: z[k] for k in ("ids", "pencil", "rough")}
        for j, i in enumerate(cached["ids"]):
            known[str(i)] = {k: cached[k][j] for k in ("pencil", "rough")}
    missing = [j for j, i in enumerate(ids) if i not in known]
    if missing:
        t = time.time()
        for n, j in enumerate(missing):
            seed = int.from_bytes(ids[j].encode()[-4:].rjust(4, b"\0"), "little")
            known[ids[j]] = {"pencil": _as_gray(pencil.pencil_sketch(photos[j], seed=seed)),
                             "rough": _as_gray(pencil.rough_sketch(photos[j], seed=seed))}
            if (n + 1) % 200 == 0:
                log(f"synthetic sketches: {n + 1}/{len(missing)}")
        log(f"synthetic sketches for {len(missing)} photos in {time.time() - t:.0f}s")
        keys = sorted(known)
        tmp = cache + ".tmp.npz"
        np.savez(tmp, ids=np.array(keys), pencil=np.stack([known[k]["pencil"] for k in keys]),
                 rough=np.stack([known[k]["rough"] for k in keys]))
        os.replace(tmp, cache)
    return {k: np.stack([known[i][k] for i in ids]) for k in ("pencil", "rough")}


def _as_gray(img) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a * 255.0 + 0.5 if a.max() <= 1.0 else a, 0, 255).astype(np.uint8)
    if a.ndim == 3:
        a = a[..., 0] if a.shape[2] in (1, 2) else np.asarray(Image.fromarray(a[..., :3]).convert("L"))
    return a


def _resize(arr: np.ndarray, size: int) -> np.ndarray:
    if arr.shape[1] == size:
        return arr
    mode = "RGB" if arr.ndim == 4 else "L"
    return np.stack([np.asarray(Image.fromarray(a, mode).resize((size, size), Image.BICUBIC)) for a in arr])


class FaceData:
    """Photos, genders (1 = female, the official 'sex' convention) and every training sketch variant."""

    def __init__(self, pack_dir: str, canvas: int, state_dir: str, split: str = "train", limit=None, log=print):
        from .data.pack import load_pack
        pack = load_pack(pack_dir, split, limit=limit)
        self.photos = _resize(pack.photos, canvas)                       # (N,S,S,3) uint8
        self.female = (1 - pack.genders.astype(np.int64)).astype(np.uint8)  # FS2K: 1 = male
        variants = {"artist": _resize(pack.sketches, canvas)}
        if split == "train":
            cache = os.path.join(state_dir, f"synthetic_{pack.photos.shape[1]}.npz")
            variants.update({k: _resize(v, canvas) for k, v in
                             synthetic_sketches(pack.photos, list(pack.ids), cache, log).items()})
        self.variants = variants
        self.names = list(variants)
        # (sketch variant index, photo index) for every training sketch
        self.sketches = np.concatenate([variants[k] for k in self.names])   # (V*N,S,S)
        self.photo_of = np.tile(np.arange(len(self.photos)), len(self.names))
        self.ids = pack.ids

    def __len__(self):
        return len(self.sketches)


def sketch_batch(sketches: np.ndarray, idx, device) -> torch.Tensor:
    return ((torch.from_numpy(sketches[idx]).float().to(device) - 127.5) / 127.5)[:, None]


def photo_batch(photos: np.ndarray, idx, device) -> torch.Tensor:
    return (torch.from_numpy(photos[idx]).float().to(device) / 127.5 - 1).permute(0, 3, 1, 2)


def augment_sketch(x: torch.Tensor, gen: torch.Generator, max_shift: int = 4) -> torch.Tensor:
    """Random integer shift (white fill) and, sometimes, thicker strokes (strokes are dark: min-pool)."""
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    x = F.pad(x, (max_shift,) * 4, value=1.0)[:, :, max_shift + dy: max_shift + dy + x.shape[2],
                                              max_shift + dx: max_shift + dx + x.shape[3]]
    if torch.rand((), generator=gen) < 0.3:
        x = -F.max_pool2d(-x, 3, 1, 1)
    return x


# ---------------------------------------------------------------------------------------------- stages

def train_stage1(args, cfg, data: FaceData, device, log) -> None:
    model = DeepFaceDrawing(cfg).to(device)
    params = list(model.encoders.parameters()) + list(model.image_decoders.parameters())
    opt = torch.optim.Adam(params, lr=args.lr or 5e-4, betas=(0.9, 0.999))
    amp = Amp(device)
    checkpoint = Checkpointer(os.path.join(args.out, "stage1.pt"), every_s=args.checkpoint_s)
    step = 0
    if args.resume and checkpoint.exists():
        ck = checkpoint.load(device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        amp.load_state_dict(ck.get("scaler"))
        step = ck["step"]
        log(f"stage 1: resumed at step {step}")
    gen = torch.Generator().manual_seed(1000 + step)
    rng = np.random.default_rng(step)
    fixed = np.linspace(0, len(data) - 1, 4).astype(int)
    model.train()
    model.feature_decoders.eval()
    log.start()
    with stop_on_signal() as stop:
        while step < args.steps and not stop.now:
            idx = rng.integers(0, len(data), args.batch)
            log.add(stage1_step(model, opt, amp, augment_sketch(sketch_batch(data.sketches, idx, device), gen)))
            step += 1
            if step % args.log_every == 0:
                log.scalars(step, "stage 1 ")
            if step % args.sample_every == 0 or step == args.steps:
                _stage1_samples(model, cfg, data.sketches[fixed], device,
                                os.path.join(args.out, "samples", f"s1_{step:06d}.png"))
                model.train()
                model.feature_decoders.eval()
            if checkpoint.due(step) or step == args.steps or stop.now:
                checkpoint.save({"model": model.state_dict(), "opt": opt.state_dict(), "scaler": amp.state_dict(),
                                 "step": step, "config": cfg.name})
        log(f"stage 1 {'stopped' if stop.now else 'finished'} at step {step}")


def stage1_step(model: DeepFaceDrawing, opt: torch.optim.Optimizer, amp: Amp, x: torch.Tensor) -> dict[str, float]:
    """One auto-encoder update on sketches x (B,1,S,S): weighted L1 + L2 of each component's reconstruction."""
    crops = model.crop_components(x)
    losses = {}
    with amp.autocast():
        for c in COMPONENTS:
            rec = model.image_decoders[c](model.encoders[c](crops[c])).float()
            # dark strokes are sparse: weigh them up so the AE does not settle for blank paper
            w = 1 + 4 * (crops[c] < 0.5).float()
            losses[c] = (w * ((rec - crops[c]).abs() + (rec - crops[c]) ** 2)).mean()
    amp.step(opt, sum(losses.values()))
    amp.update()
    return {c: v.item() for c, v in losses.items()}


@torch.no_grad()
def _stage1_samples(model: DeepFaceDrawing, cfg, sketches: np.ndarray, device, path: str) -> str:
    """Sketch | its reconstruction from the five components' auto-encoders."""
    model.eval()
    xs = sketch_batch(sketches, np.arange(len(sketches)), device)
    rec = model.decode_images(model.encode(xs))
    out = rec["remainder"].clone()
    for c in COMPONENTS[:-1]:
        bx, by, n = cfg.box(c)
        out[:, :, by:by + n, bx:bx + n] = rec[c]
    return save_grid([[a, b] for a, b in zip(to_u8(xs), to_u8(out))], path)


@torch.no_grad()
def encode_all(model: DeepFaceDrawing, sketches: np.ndarray, device, batch: int = 32) -> dict[str, torch.Tensor]:
    model.eval()
    out = {c: [] for c in COMPONENTS}
    for i in range(0, len(sketches), batch):
        z = model.encode(sketch_batch(sketches, np.arange(i, min(i + batch, len(sketches))), device))
        for c in COMPONENTS:
            out[c].append(z[c].float().cpu())
    return {c: torch.cat(v) for c, v in out.items()}


def load_stage1(args, cfg, device) -> tuple[DeepFaceDrawing, int]:
    """The model with the stage-1 checkpoint's encoders and image decoders, and that checkpoint's step."""
    path = os.path.join(args.out, "stage1.pt")
    if not os.path.isfile(path):
        raise SystemExit(f"stage 2 needs the stage-1 checkpoint {path}; run --stage 1 first")
    model = DeepFaceDrawing(cfg).to(device)
    ck = load_checkpoint(path, device)
    model.load_state_dict(ck["model"])
    return model, ck["step"]


def latents_source(model: DeepFaceDrawing, stage1_step: int, sketches: np.ndarray | None = None) -> dict:
    """What a latents cache was made from: the stage-1 encoders (step and a hash of their weights) and, when
    given, the training sketches (count and hash)."""
    src = {"stage1_step": int(stage1_step), "encoders": state_digest(model.encoders)}
    if sketches is not None:
        import hashlib
        src.update(n=len(sketches), sketches=hashlib.sha1(np.ascontiguousarray(sketches).data).hexdigest()[:16])
    return src


def stage1_latents(model: DeepFaceDrawing, stage1_step: int, sketches: np.ndarray, path: str, device, log) -> dict:
    """Every training sketch's latents under the stage-1 encoders, cached in `path` (latents.pt) with what they
    were made from (`"source"`: latents_source); recomputed when the encoders (a retrained stage 1) or the
    sketches differ."""
    source = latents_source(model, stage1_step, sketches)
    cached = load_checkpoint(path) if os.path.isfile(path) else None
    if cached is not None and cached.get("source") == source:
        return cached
    if cached is not None:
        log(f"{path} was made from {cached.get('source', 'an unrecorded stage 1')}, not {source}: re-encoding")
    t = time.time()
    latents = {**encode_all(model, sketches, device), "source": source}
    save_atomic(latents, path)
    log(f"encoded {len(sketches)} training sketches in {time.time() - t:.0f}s")
    return latents


def train_stage2(args, cfg, data: FaceData, device, log) -> None:
    model, stage1_step = load_stage1(args, cfg, device)
    latents = stage1_latents(model, stage1_step, data.sketches, os.path.join(args.out, "latents.pt"), device, log)
    model.encoders.requires_grad_(False).eval()
    model.image_decoders.requires_grad_(False).eval()
    disc = MultiscaleDiscriminator(1 + 3, ndf=args.ndf).to(device)
    g_params = list(model.feature_decoders.parameters()) + list(model.generator.parameters())
    opt_g = torch.optim.Adam(g_params, lr=args.lr or 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.d_lr or args.lr or 2e-4, betas=(0.5, 0.999))
    amp = Amp(device)
    checkpoint = Checkpointer(os.path.join(args.out, "stage2.pt"), every_s=args.checkpoint_s)
    step = 0
    if args.resume and checkpoint.exists():
        ck = checkpoint.load(device)
        model.feature_decoders.load_state_dict(ck["feature_decoders"])
        model.generator.load_state_dict(ck["generator"])
        disc.load_state_dict(ck["disc"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        amp.load_state_dict(ck.get("scaler"))
        step = ck["step"]
        log(f"stage 2: resumed at step {step}")
    # the learning rates given now win over the ones stored with the optimiser state
    for group in opt_g.param_groups:
        group["lr"] = args.lr or 2e-4
    for group in opt_d.param_groups:
        group["lr"] = args.d_lr or args.lr or 2e-4
    rng = np.random.default_rng(step + 7)
    gen = torch.Generator().manual_seed(step + 7)
    lat_std = {c: latents[c].std(0).mean().item() for c in COMPONENTS}
    fixed = np.concatenate([np.linspace(0, len(data.photos) - 1, 3).astype(int) + k * len(data.photos)
                            for k in range(len(data.names))])[:6]
    model.feature_decoders.train()
    model.generator.train()
    log.start()
    with stop_on_signal() as stop:
        while step < args.steps and not stop.now:
            idx = rng.integers(0, len(data), args.batch)
            z = {c: latents[c][idx].to(device) for c in COMPONENTS}
            # a little latent noise: at test time the decoders see projected (blended) latents, not exact ones
            z = {c: v + args.latent_noise * lat_std[c] * torch.randn(v.shape, generator=gen).to(device)
                 for c, v in z.items()}
            sk = sketch_batch(data.sketches, idx, device)
            real = photo_batch(data.photos, data.photo_of[idx], device)
            log.add(stage2_step(model, disc, opt_g, opt_d, amp, z, sk, real, args.lambda_feat, args.lambda_l1))
            step += 1
            if step % args.log_every == 0:
                log.scalars(step, "stage 2 ")
            if step % args.sample_every == 0 or step == args.steps:
                model.generator.eval()
                with torch.no_grad():
                    out = model.generate({c: latents[c][fixed].to(device) for c in COMPONENTS})
                rows = [[s, f, p] for s, f, p in zip(to_u8(sketch_batch(data.sketches, fixed, device)), to_u8(out),
                                                     data.photos[data.photo_of[fixed]])]
                save_grid(rows, os.path.join(args.out, "samples", f"s2_{step:06d}.png"))
                model.generator.train()
            if checkpoint.due(step) or step == args.steps or stop.now:
                checkpoint.save({"feature_decoders": model.feature_decoders.state_dict(),
                                 "generator": model.generator.state_dict(), "disc": disc.state_dict(),
                                 "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "scaler": amp.state_dict(),
                                 "step": step, "config": cfg.name})
        log(f"stage 2 {'stopped' if stop.now else 'finished'} at step {step}")


def stage2_step(model: DeepFaceDrawing, disc: MultiscaleDiscriminator, opt_g, opt_d, amp: Amp, z: dict, sk, real,
                lambda_feat: float = 10.0, lambda_l1: float = 10.0) -> dict[str, float]:
    """One conditional-GAN update: the discriminator on [sketch, photo] vs [sketch, generated face] (LSGAN), then
    the feature decoders + generator (LSGAN + feature matching + L1 to the photo) with the discriminator frozen."""
    with amp.autocast():
        fake = model.generate(z)
        d_fake = disc(torch.cat([sk, fake.detach()], 1))
        d_real = disc(torch.cat([sk, real], 1))
        loss_d = 0.5 * (lsgan(d_fake, False) + lsgan(d_real, True))
    amp.step(opt_d, loss_d)
    with frozen(disc):  # the generator's loss must not leave gradients in the discriminator
        with amp.autocast():
            d_fake_g = disc(torch.cat([sk, fake], 1))
            g_gan = lsgan(d_fake_g, True)
            g_feat = feature_matching(d_fake_g, d_real)
            g_l1 = F.l1_loss(fake.float(), real)
            loss_g = g_gan + lambda_feat * g_feat + lambda_l1 * g_l1
        amp.step(opt_g, loss_g)
    amp.update()
    return {k: v.item() for k, v in (("d", loss_d), ("g_gan", g_gan), ("g_feat", g_feat), ("l1", g_l1))}


def export(args, cfg, device, log) -> str:
    """Stage-1 encoders/image decoders + stage-2 FM decoders/generator + feature bank -> fp16 safetensors."""
    model, stage1_step = load_stage1(args, cfg, device)
    s2 = os.path.join(args.out, "stage2.pt")
    steps = {"stage1": stage1_step}
    if os.path.isfile(s2):
        ck = load_checkpoint(s2, device)
        model.feature_decoders.load_state_dict(ck["feature_decoders"])
        model.generator.load_state_dict(ck["generator"])
        steps["stage2"] = ck["step"]
    else:
        raise SystemExit(f"no stage-2 checkpoint in {args.out}: a face model needs its generator trained")
    latents_path = os.path.join(args.out, "latents.pt")
    genders_path = os.path.join(args.out, "bank_gender.npy")
    if not (os.path.isfile(latents_path) and os.path.isfile(genders_path)):
        raise SystemExit(f"{args.out} lacks latents.pt / bank_gender.npy (written when stage 2 starts)")
    latents = load_checkpoint(latents_path)
    made_from, now = latents.get("source"), latents_source(model, stage1_step)
    if made_from is None:
        log(f"{latents_path} does not say which stage 1 made it (an older run): exporting it as it is")
    elif {k: made_from.get(k) for k in now} != now:
        raise SystemExit(f"{latents_path} was made from stage 1 {made_from}, the checkpoint is {now}: "
                         "run stage 2 (it re-encodes the sketches) before exporting")
    gender = np.load(genders_path)
    bank = {c: latents[c].numpy() for c in COMPONENTS}
    save_safetensors(model.cpu(), args.export, bank, gender,
                     {"trained_steps": json.dumps(steps), "data": "FS2K train split (artist + synthetic sketches)",
                      "bank_gender": "1 = female, 0 = male"})
    log(f"exported {args.export} ({os.path.getsize(args.export) / 1e6:.1f} MB, steps {steps}, bank {len(gender)} rows)")
    return args.export


# ---------------------------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m facesketch.models.train face", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="FS2K pack directory (models/data/pack.py)")
    p.add_argument("--out", default=DEFAULT_STATE, help="training state directory (outside the repository)")
    p.add_argument("--config", default="lite", choices=("lite", "official"))
    p.add_argument("--stage", type=int, choices=(1, 2), default=1)
    p.add_argument("--steps", type=int, default=None, help="train until this step (stage 1: 3000, stage 2: 200000)")
    p.add_argument("--batch", type=int, default=None, help="batch size (stage 1: 8, stage 2: 2)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--resume", action="store_true", help="continue from the stage's checkpoint in --out")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="CPU threads (the machine is shared)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training photos")
    p.add_argument("--d-lr", type=float, default=None, help="stage 2 discriminator learning rate (default: --lr)")
    p.add_argument("--ndf", type=int, default=32)
    p.add_argument("--lambda-feat", type=float, default=10.0)
    p.add_argument("--lambda-l1", type=float, default=10.0)
    p.add_argument("--latent-noise", type=float, default=0.05, help="stage 2 latent noise, x the latents' std")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--sample-every", type=int, default=200)
    p.add_argument("--checkpoint-s", type=float, default=300.0)
    p.add_argument("--precompute-synthetic", action="store_true",
                   help="only make the synthetic sketches of the pack's photos (cached in --out) and exit")
    p.add_argument("--export", metavar="PATH", help="write fp16 safetensors from the checkpoints in --out and exit")
    return p


def precompute_synthetic(pack_dir: str, state_dir: str, log=print) -> None:
    """Fill the synthetic-sketch cache from the photo files of a pack that is still being written."""
    names = sorted(f for f in os.listdir(os.path.join(pack_dir, "photos")))
    ids = [os.path.splitext(f)[0] for f in names]
    photos = []
    for f in names:
        with Image.open(os.path.join(pack_dir, "photos", f)) as im:
            photos.append(np.asarray(im.convert("RGB")))
    synthetic_sketches(np.stack(photos), ids, os.path.join(state_dir, f"synthetic_{photos[0].shape[0]}.npz"), log)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    cfg = get_config(args.config)
    os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)
    log = Logger(args.out, tsv=f"log_stage{args.stage}.tsv")
    if args.export:
        export(args, cfg, device, log)
        return 0
    if args.precompute_synthetic:
        precompute_synthetic(args.data, args.out, log)
        return 0
    if not args.data:
        raise SystemExit("--data PACK is required for training")
    args.steps = args.steps or (3000 if args.stage == 1 else 200000)
    args.batch = args.batch or (8 if args.stage == 1 else 2)
    log(f"face {cfg.name} stage {args.stage} on {device}: {' '.join(sys.argv[1:] if argv is None else argv)}")
    data = FaceData(args.data, cfg.canvas, args.out, "train", args.limit, log)
    np.save(os.path.join(args.out, "bank_gender.npy"), np.tile(data.female, len(data.names)))
    log(f"{len(data.photos)} photos, sketch variants {data.names}, {len(data)} training sketches")
    (train_stage1 if args.stage == 1 else train_stage2)(args, cfg, data, device, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
