"""Training of the DeepFaceDrawing face model on the face pack (reached as `python -m facesketch.models.train face ...`).

    python -m facesketch.models.train face --data FACEPACK --out STATEDIR [--config lite2] [--stage 1|2] [--steps N] [--resume]
    python -m facesketch.models.train face --data FACEPACK --out STATEDIR --export models/weights/face_lite.safetensors

FACEPACK is models.data.face_pack's output: FS2K and CelebA training photos aligned to the face template, each with
its sketches (FS2K's artists, and sketches made from the photos: colour dodge, pencil filter, rough strokes, pen
outlines, the sketch engine's styles, HED edges).

Stage 1: the five component auto-encoders (encoder + image decoder) on sketch reconstruction (L1 + L2), with
flips, small shifts and stroke thickening so careful and rough lines land near each other in latent space.
Stage 2: encoders frozen; feature-mapping decoders + generator learn to draw the photo from the encoded sketch.
The recipe that converges on a CPU: L1 + the HED-VGG16 perceptual loss + SSIM first (`--gan-weight 0`), then a
conditional GAN (pix2pixHD style: two-scale PatchGAN, LSGAN, discriminator feature matching) on top. The targets
are the photos on a plain grey outside a soft head oval (face_template.head_mask): the model draws a clean
background, which the face engine composites into the user's layer.

State lives in STATEDIR, outside the repository: stage1.pt / stage2.pt (written atomically every few minutes and
when the run is stopped with SIGTERM or Ctrl-C, read with weights_only=True; --resume continues from the stage's
one), samples/, log.txt and log_stage1.tsv / log_stage2.tsv. The shared pieces are in models/training.py, the
discriminators and GAN losses in models/discriminators.py. Export encodes one sketch per photo (an artist's where
there is one) with the stage-1 encoders into the feature bank, with each photo's gender.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from .deepfacedrawing import COMPONENTS, DeepFaceDrawing, get_config, save_safetensors
from .discriminators import MultiscaleDiscriminator, feature_matching, lsgan
from .training import Amp, Checkpointer, Logger, frozen, load_checkpoint, save_grid, stop_on_signal, to_u8

DEFAULT_STATE = os.path.join(os.path.expanduser("~"), ".cache", "facesketch", "train", "face_lite2")
BACKGROUND = 0.6  # the plain background behind generated faces, in [-1, 1] (a light grey, 204/255)
# the sketch of a photo the feature bank holds: the artist's, else the most careful made one
BANK_PREFERENCE = ("artist", "engine", "pencil", "dodge", "outline", "hed", "rough")


# ---------------------------------------------------------------------------------------------- data

class FaceData:
    """The face pack's photos (memory-mapped), every training sketch and which photo it shows, genders."""

    def __init__(self, pack_dir: str, canvas: int, split: str = "train", limit=None, kinds=None, log=print):
        from .data.face_pack import load_face_pack
        pack = load_face_pack(pack_dir, split)
        if pack.photos.shape[1] != canvas:
            raise SystemExit(f"{pack_dir} is a {pack.photos.shape[1]}px pack; this model needs {canvas}px "
                             f"(python -m facesketch.models.data.face_pack --size {canvas})")
        keep = np.ones(len(pack.sketch_of), bool)
        if limit:
            keep &= pack.sketch_of[:, 0] < limit
        if kinds:
            unknown = set(kinds) - set(pack.kinds)
            if unknown:
                raise SystemExit(f"the face pack has no sketch kinds {sorted(unknown)}; it has {list(pack.kinds)}")
            keep &= np.isin(pack.sketch_of[:, 1], [pack.kinds.index(k) for k in kinds])
        self.rows = np.flatnonzero(keep)                 # rows of pack.sketches used
        self.photos, self.all_sketches = pack.photos, pack.sketches
        self.photo_of = pack.sketch_of[self.rows, 0]
        self.kind_of = pack.sketch_of[self.rows, 1]
        self.kinds, self.items = pack.kinds, pack.items
        self.female = pack.genders                       # per photo: 1 female, 0 male, -1 unknown
        self.ids = [it["id"] for it in pack.items]
        counts = {k: int((self.kind_of == i).sum()) for i, k in enumerate(self.kinds) if (self.kind_of == i).any()}
        log(f"face pack {pack_dir}: {len(set(self.photo_of.tolist()))} photos, {len(self.rows)} sketches {counts}")

    def __len__(self):
        return len(self.rows)

    def sketches(self, idx) -> np.ndarray:
        """uint8 (B,S,S) training sketches idx (indices into this data, not the pack)."""
        return self.all_sketches[self.rows[np.asarray(idx)]]

    def sampling_weights(self, artist_share: float) -> np.ndarray:
        """Per-sketch probabilities: artist sketches together get `artist_share` of the draws (they are what users
        draw most like, and few); the made kinds share the rest evenly by kind, so that a kind made for only part
        of the photos (HED edges cost two CPU-seconds a photo) is still seen as often as the others."""
        artist_k = self.kinds.index("artist") if "artist" in self.kinds else -1
        kinds, rows_per_kind = np.unique(self.kind_of, return_counts=True)
        made = kinds[kinds != artist_k]
        if len(made) in (0, len(kinds)):   # only artists or only made kinds: every kind alike
            share = {k: 1.0 / len(kinds) for k in kinds}
        else:
            share = {k: (artist_share if k == artist_k else (1 - artist_share) / len(made)) for k in kinds}
        count = dict(zip(kinds, rows_per_kind))
        return np.array([share[k] / count[k] for k in self.kind_of])


def sketch_tensor(sketches: np.ndarray, device) -> torch.Tensor:
    return ((torch.from_numpy(np.ascontiguousarray(sketches)).float().to(device) - 127.5) / 127.5)[:, None]


def photo_tensor(photos: np.ndarray, device) -> torch.Tensor:
    return (torch.from_numpy(np.ascontiguousarray(photos)).float().to(device) / 127.5 - 1).permute(0, 3, 1, 2)


def sketch_batch(sketches: np.ndarray, idx, device) -> torch.Tensor:
    return sketch_tensor(np.asarray(sketches)[idx], device)


def shift(x: torch.Tensor, dx: int, dy: int, fill: float | None) -> torch.Tensor:
    """Move images by whole pixels; uncovered pixels get `fill` (None: the nearest edge pixel)."""
    p = max(abs(dx), abs(dy))
    if p == 0:
        return x
    padded = F.pad(x, (p,) * 4, mode="replicate") if fill is None else F.pad(x, (p,) * 4, value=fill)
    h, w = x.shape[-2:]
    return padded[..., p - dy: p - dy + h, p - dx: p - dx + w]


def flip_faces(x: torch.Tensor, fill: float | None) -> torch.Tensor:
    """Mirror aligned faces about the template's face axis (the eyes' midpoint), which is not the canvas centre."""
    from .data.face_template import template_points
    size = x.shape[-1]
    offset = int(round(size - 2 * template_points(size)[:2, 0].mean()))
    return shift(x.flip(-1), -offset, 0, fill)


def thicken(x: torch.Tensor) -> torch.Tensor:
    """Thicker strokes (strokes are dark: a min filter)."""
    return -F.max_pool2d(-x, 3, 1, 1)


def augment_sketch(x: torch.Tensor, gen: torch.Generator, max_shift: int = 4) -> torch.Tensor:
    """Random integer shift (white fill) and, sometimes, thicker strokes."""
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    x = shift(x, dx, dy, 1.0)
    return thicken(x) if torch.rand((), generator=gen) < 0.3 else x


def drawn_small(x: torch.Tensor, factor: float) -> torch.Tensor:
    """The sketch as align=auto sees a face drawn `factor` times smaller than the template: area-reduced to that
    size, then bilinearly enlarged back (soft, thicker lines and lost detail)."""
    size = x.shape[-1]
    small = F.interpolate(x, size=max(8, round(size / factor)), mode="area")
    return F.interpolate(small, size=size, mode="bilinear", align_corners=False)


def augment_pair(sk: torch.Tensor, photo: torch.Tensor, gen: torch.Generator, max_shift: int = 3,
                 small_p: float = 0.0, small_max: float = 3.3):
    """The same flip and shift for a sketch and its photo; sometimes thicker strokes; with probability small_p the
    sketch drawn 1.2 to small_max times smaller (faces drawn small in a big layer: at a third of a 512 layer the
    face is about 3 times smaller than the template's)."""
    if torch.rand((), generator=gen) < 0.5:
        sk, photo = flip_faces(sk, 1.0), flip_faces(photo, None)
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    sk, photo = shift(sk, dx, dy, 1.0), shift(photo, dx, dy, None)
    sk = thicken(sk) if torch.rand((), generator=gen) < 0.2 else sk
    if small_p > 0 and torch.rand((), generator=gen) < small_p:
        sk = drawn_small(sk, 1.2 + (small_max - 1.2) * float(torch.rand((), generator=gen)))
    return sk, photo


_MASKS: dict[int, torch.Tensor] = {}


def plain_background(photo: torch.Tensor) -> torch.Tensor:
    """(B,3,S,S) aligned photos in [-1,1] -> the same faces on the plain BACKGROUND outside the soft head oval."""
    size = photo.shape[-1]
    if size not in _MASKS:
        from .data.face_template import head_mask
        _MASKS[size] = torch.from_numpy(head_mask(size))
    m = _MASKS[size].to(photo.device)
    return photo * m + BACKGROUND * (1 - m)


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
            x = sketch_tensor(data.sketches(rng.integers(0, len(data), args.batch)), device)
            if torch.rand((), generator=gen) < 0.5:
                x = flip_faces(x, 1.0)
            log.add(stage1_step(model, opt, amp, augment_sketch(x, gen)))
            step += 1
            if step % args.log_every == 0:
                log.scalars(step, "stage 1 ")
            if step % args.sample_every == 0 or step == args.steps:
                _stage1_samples(model, cfg, data.sketches(fixed), device,
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
        z = model.encode(sketch_tensor(sketches[i:i + batch], device))
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
    if ck.get("config", cfg.name) != cfg.name:
        raise SystemExit(f"{path} is a {ck['config']} stage 1, not {cfg.name}: pass --config {ck['config']}")
    model.load_state_dict(ck["model"])
    return model, ck["step"]


@dataclasses.dataclass
class Stage2Loss:
    """Weights of the generator's losses; gan = 0 trains without the discriminator (the first phase)."""
    l1: float = 10.0
    perceptual: float = 0.0   # HED-VGG16 (models.vgg16_hed, --vgg-layers) at half resolution
    ssim: float = 0.0         # 1 - SSIM of the grey faces (the evaluation's measure of likeness)
    gan: float = 0.0          # LSGAN on the two-scale PatchGAN
    feat: float = 10.0        # discriminator feature matching (with gan > 0)


def train_stage2(args, cfg, data: FaceData, device, log) -> None:
    model, stage1_step = load_stage1(args, cfg, device)
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
        if ck.get("stage1_step", stage1_step) != stage1_step:
            raise SystemExit(f"stage2.pt was trained on the stage-1 encoders of step {ck['stage1_step']}, "
                             f"stage1.pt is now step {stage1_step}: start stage 2 again (without --resume)")
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
    weights = Stage2Loss(l1=args.lambda_l1, perceptual=args.perceptual, ssim=args.ssim_weight, gan=args.gan_weight,
                         feat=args.lambda_feat)
    perceptual = None
    if weights.perceptual > 0:
        from .vgg16_hed import PerceptualLoss
        perceptual = PerceptualLoss(layers=args.vgg_layers.split(",")).to(device)
    log(f"stage 2 losses: {dataclasses.asdict(weights)}")
    rng = np.random.default_rng(step + 7)
    gen = torch.Generator().manual_seed(step + 7)
    probs = data.sampling_weights(args.artist_share)
    fixed = _sample_rows(data)
    model.feature_decoders.train()
    model.generator.train()
    log.start()
    with stop_on_signal() as stop:
        while step < args.steps and not stop.now:
            idx = rng.choice(len(data), args.batch, p=probs)
            sk, real = augment_pair(sketch_tensor(data.sketches(idx), device),
                                    photo_tensor(data.photos[data.photo_of[idx]], device), gen,
                                    small_p=args.drawn_small)
            with torch.no_grad():
                z = model.encode(sk)
            # a little latent noise: at test time the decoders see projected (blended) latents, not exact ones
            z = {c: v + args.latent_noise * v.std(1, keepdim=True) * torch.randn(v.shape, generator=gen).to(device)
                 for c, v in z.items()}
            log.add(stage2_step(model, disc, opt_g, opt_d, amp, z, sk, plain_background(real), weights, perceptual))
            step += 1
            if step % args.log_every == 0:
                log.scalars(step, "stage 2 ")
            if step % args.sample_every == 0 or step == args.steps:
                _stage2_samples(model, data, fixed, device, os.path.join(args.out, "samples", f"s2_{step:06d}.png"))
                model.feature_decoders.train()
                model.generator.train()
            if checkpoint.due(step) or step == args.steps or stop.now:
                checkpoint.save({"feature_decoders": model.feature_decoders.state_dict(),
                                 "generator": model.generator.state_dict(), "disc": disc.state_dict(),
                                 "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "scaler": amp.state_dict(),
                                 "step": step, "stage1_step": stage1_step, "config": cfg.name})
        log(f"stage 2 {'stopped' if stop.now else 'finished'} at step {step}")


def _sample_rows(data: FaceData, per_kind: int = 2) -> np.ndarray:
    """Fixed sketches for the sample grids: two of each kind, of different photos."""
    rows = []
    for k in range(len(data.kinds)):
        r = np.flatnonzero(data.kind_of == k)
        rows += list(r[(np.arange(per_kind) * len(r) // per_kind + 97 * k) % len(r)]) if len(r) else []  # other photos per kind
    return np.array(rows[:12])


@torch.no_grad()
def _stage2_samples(model: DeepFaceDrawing, data: FaceData, rows: np.ndarray, device, path: str) -> str:
    """Sketch | generated face | target (the photo on the plain background)."""
    model.feature_decoders.eval()
    model.generator.eval()
    sk = sketch_tensor(data.sketches(rows), device)
    out = model.generate(model.encode(sk))
    target = plain_background(photo_tensor(data.photos[data.photo_of[rows]], device))
    return save_grid([[s, f, t] for s, f, t in zip(to_u8(sk), to_u8(out), to_u8(target))], path)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) in [-1,1] -> (B,1,H,W) luma in [0,1]."""
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
    return ((x + 1) / 2 * w).sum(1, keepdim=True)


def stage2_step(model: DeepFaceDrawing, disc: MultiscaleDiscriminator, opt_g, opt_d, amp: Amp, z: dict, sk, target,
                weights: Stage2Loss = Stage2Loss(gan=1.0), perceptual=None) -> dict[str, float]:
    """One update of the feature decoders + generator: L1 (+ perceptual, + 1 - SSIM) to the target photo; with
    weights.gan > 0 first the discriminator on [sketch, photo] vs [sketch, generated face] (LSGAN), then the
    generator's LSGAN + feature matching with the discriminator frozen."""
    logs = {}
    with amp.autocast():
        fake = model.generate(z)
    if weights.gan > 0:
        with amp.autocast():
            d_fake = disc(torch.cat([sk, fake.detach()], 1))
            d_real = disc(torch.cat([sk, target], 1))
            loss_d = 0.5 * (lsgan(d_fake, False) + lsgan(d_real, True))
        amp.step(opt_d, loss_d)
        logs["d"] = loss_d
    with frozen(disc):  # the generator's loss must not leave gradients in the discriminator
        fake32 = fake.float()
        loss_g = weights.l1 * F.l1_loss(fake32, target)
        logs["l1"] = F.l1_loss(fake32.detach(), target)
        if perceptual is not None and weights.perceptual > 0:
            # at half resolution: the VGG costs about what the generator does instead of six times as much. HED's
            # VGG takes 0..255 RGB; /100 puts its loss near a few times the L1 term's scale
            small = [F.avg_pool2d(t, 2) for t in (fake32, target)]
            loss_p = perceptual((small[0] + 1) * 127.5, (small[1] + 1) * 127.5) / 100.0
            loss_g = loss_g + weights.perceptual * loss_p
            logs["vgg"] = loss_p
        if weights.ssim > 0:
            from pytorch_msssim import ssim
            loss_s = 1 - ssim(_gray(fake32), _gray(target), data_range=1.0, size_average=True)
            loss_g = loss_g + weights.ssim * loss_s
            logs["1-ssim"] = loss_s
        if weights.gan > 0:
            with amp.autocast():
                d_fake_g = disc(torch.cat([sk, fake], 1))
                g_gan = lsgan(d_fake_g, True)
                g_feat = feature_matching(d_fake_g, d_real)
            loss_g = loss_g + weights.gan * g_gan + weights.feat * g_feat
            logs.update(g_gan=g_gan, g_feat=g_feat)
        amp.step(opt_g, loss_g)
    amp.update()
    return {k: float(v.detach()) for k, v in logs.items()}


def bank_rows(data: FaceData) -> np.ndarray:
    """One sketch per photo for the feature bank (indices into data): the first kind of BANK_PREFERENCE it has."""
    rank = np.array([BANK_PREFERENCE.index(k) if k in BANK_PREFERENCE else len(BANK_PREFERENCE) for k in data.kinds])
    order = np.lexsort((rank[data.kind_of], data.photo_of))
    first = np.ones(len(order), bool)
    first[1:] = data.photo_of[order][1:] != data.photo_of[order][:-1]
    return order[first]


def write_state(model: DeepFaceDrawing, out: str, stage1_step: int, stage2_step: int | None, disc=None,
                ndf: int = 32) -> None:
    """stage1.pt (and, with a stage-2 step, stage2.pt) as the two stages write them, from a model's weights, with
    fresh optimiser states (and a fresh discriminator unless one is given): a new run that starts from weights."""
    from .discriminators import MultiscaleDiscriminator
    from .training import save_atomic
    os.makedirs(out, exist_ok=True)
    p1 = list(model.encoders.parameters()) + list(model.image_decoders.parameters())
    save_atomic({"model": model.state_dict(), "opt": torch.optim.Adam(p1).state_dict(), "scaler": None,
                 "step": stage1_step, "config": model.cfg.name}, os.path.join(out, "stage1.pt"))
    if stage2_step is None:
        return
    disc = disc or MultiscaleDiscriminator(1 + 3, ndf=ndf)
    p2 = list(model.feature_decoders.parameters()) + list(model.generator.parameters())
    save_atomic({"feature_decoders": model.feature_decoders.state_dict(), "generator": model.generator.state_dict(),
                 "disc": disc.state_dict(), "opt_g": torch.optim.Adam(p2, betas=(0.5, 0.999)).state_dict(),
                 "opt_d": torch.optim.Adam(disc.parameters(), betas=(0.5, 0.999)).state_dict(), "scaler": None,
                 "step": stage2_step, "stage1_step": stage1_step, "config": model.cfg.name},
                os.path.join(out, "stage2.pt"))


def init_from(args, log) -> None:
    """--init-from WEIGHTS: the state of a new run in --out from exported weights (their trained steps kept)."""
    from .deepfacedrawing import load_safetensors
    if any(os.path.isfile(os.path.join(args.out, f)) for f in ("stage1.pt", "stage2.pt")):
        raise SystemExit(f"{args.out} already holds a training state: --resume it, or choose another --out")
    model, _, _, meta = load_safetensors(args.init_from)
    if model.cfg.name != args.config:
        raise SystemExit(f"{args.init_from} holds a {model.cfg.name} model: pass --config {model.cfg.name}")
    steps = json.loads(meta.get("trained_steps", "{}"))
    write_state(model, args.out, int(steps.get("stage1", 0)), int(steps.get("stage2", 0)), ndf=args.ndf)
    log(f"new state in {args.out} from {args.init_from} (steps {steps}, a fresh discriminator)")


def export(args, cfg, data: FaceData, device, log) -> str:
    """Stage-1 encoders/image decoders + stage-2 FM decoders/generator + feature bank -> safetensors
    (deepfacedrawing.save_safetensors: the large weights and the bank int8, the rest fp16)."""
    model, stage1_step = load_stage1(args, cfg, device)
    s2 = os.path.join(args.out, "stage2.pt")
    if not os.path.isfile(s2):
        raise SystemExit(f"no stage-2 checkpoint in {args.out}: a face model needs its generator trained")
    ck = load_checkpoint(s2, device)
    if ck.get("stage1_step", stage1_step) != stage1_step:
        raise SystemExit(f"stage2.pt was trained on the stage-1 encoders of step {ck['stage1_step']}, stage1.pt is "
                         f"step {stage1_step}: train stage 2 again before exporting")
    model.feature_decoders.load_state_dict(ck["feature_decoders"])
    model.generator.load_state_dict(ck["generator"])
    steps = {"stage1": stage1_step, "stage2": ck["step"]}
    rows = bank_rows(data)
    gender = data.female[data.photo_of[rows]]
    if (gender < 0).any():
        log(f"{int((gender < 0).sum())} photos have no gender label (CelebA people the classifier of "
            "models.data.face_gender was unsure about, or it was not run): left out of the bank")
        rows, gender = rows[gender >= 0], gender[gender >= 0]
    bank = {c: v.numpy() for c, v in encode_all(model, data.sketches(rows), device).items()}
    kinds = {k: int((data.kind_of[rows] == i).sum()) for i, k in enumerate(data.kinds) if (data.kind_of[rows] == i).any()}
    save_safetensors(model.cpu(), args.export, bank, gender.astype(np.uint8),
                     {"trained_steps": json.dumps(steps), "bank_gender": "1 = female, 0 = male",
                      "data": f"face pack {', '.join(sorted({it['dataset'] for it in data.items}))} train: "
                              f"{len(set(data.photo_of.tolist()))} photos, {len(data)} sketches",
                      "bank_sketches": json.dumps(kinds)})
    log(f"exported {args.export} ({os.path.getsize(args.export) / 1e6:.1f} MB, steps {steps}, bank {len(rows)} rows "
        f"{kinds})")
    return args.export


# ---------------------------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m facesketch.models.train face", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="face pack directory (models/data/face_pack.py)")
    p.add_argument("--out", default=DEFAULT_STATE, help="training state directory (outside the repository)")
    p.add_argument("--config", default="lite2", choices=("lite", "lite2", "official"))
    p.add_argument("--stage", type=int, choices=(1, 2), default=1)
    p.add_argument("--steps", type=int, default=None, help="train until this step (stage 1: 3000, stage 2: 200000)")
    p.add_argument("--batch", type=int, default=None, help="batch size (stage 1: 16, stage 2: 4)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--resume", action="store_true", help="continue from the stage's checkpoint in --out")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="CPU threads (the machine is shared)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training photos")
    p.add_argument("--kinds", default=None, help="comma-separated sketch kinds to train on (default: all)")
    p.add_argument("--artist-share", type=float, default=0.3, help="stage 2: share of draws that are artist sketches")
    p.add_argument("--d-lr", type=float, default=None, help="stage 2 discriminator learning rate (default: --lr)")
    p.add_argument("--ndf", type=int, default=32)
    p.add_argument("--lambda-l1", type=float, default=10.0)
    p.add_argument("--perceptual", type=float, default=0.0, help="stage 2: HED-VGG16 perceptual loss weight")
    p.add_argument("--vgg-layers", default="relu1_2,relu2_2,relu3_3",
                   help="stage 2: HED-VGG16 layers of the perceptual loss (pix2pixHD's weights per block); "
                        "relu4_3,relu5_3 add the deep features the Frechet distance compares")
    p.add_argument("--ssim-weight", type=float, default=0.0, help="stage 2: weight of 1 - SSIM")
    p.add_argument("--gan-weight", type=float, default=1.0, help="stage 2: LSGAN weight (0: no discriminator)")
    p.add_argument("--lambda-feat", type=float, default=10.0)
    p.add_argument("--drawn-small", type=float, default=0.0, metavar="P",
                   help="stage 2: share of draws whose sketch is shrunk 1.2-3.3x and enlarged back, as align=auto "
                        "enlarges a face drawn small in a big layer")
    p.add_argument("--latent-noise", type=float, default=0.05, help="stage 2 latent noise, x each latent's std")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--sample-every", type=int, default=200)
    p.add_argument("--checkpoint-s", type=float, default=300.0)
    p.add_argument("--export", metavar="PATH", help="write the weights file (large weights int8, the rest fp16) from the checkpoints in --out and exit")
    p.add_argument("--init-from", metavar="WEIGHTS",
                   help="start a new state in --out from exported weights (e.g. the shipped ones), then train "
                        "with --resume")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    cfg = get_config(args.config)
    os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)
    log = Logger(args.out, tsv=f"log_stage{args.stage}.tsv")
    kinds = [k for k in (args.kinds or "").split(",") if k] or None
    data = FaceData(args.data, cfg.canvas, "train", args.limit, kinds, log)
    if args.export:
        export(args, cfg, data, device, log)
        return 0
    if args.init_from:
        init_from(args, log)
        if not args.resume:
            return 0
    args.steps = args.steps or (3000 if args.stage == 1 else 200000)
    args.batch = args.batch or (16 if args.stage == 1 else 4)
    log(f"face {cfg.name} stage {args.stage} on {device}: {' '.join(sys.argv[1:] if argv is None else argv)}")
    (train_stage1 if args.stage == 1 else train_stage2)(args, cfg, data, device, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
