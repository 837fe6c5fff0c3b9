"""Training: the HIDA sketch generator, the depth network and the pix2pix baseline.

    python -m facesketch.models.train depth   --data PACK --out STATEDIR [--steps N] [--resume] [--export]
    python -m facesketch.models.train sketch  --data PACK --out STATEDIR [--config lite] [--steps N] [--resume] [--export]
    python -m facesketch.models.train pix2pix --data PACK --out STATEDIR [--steps N] [--resume] [--export]
    python -m facesketch.models.train face    --data FACEPACK --out STATEDIR [--config lite2] [--stage 1|2] ... (models/train_face.py)
    python -m facesketch.models.train locator [--landmarks DIR] [--made DIR] [--out STATEDIR] ... (models/train_locator.py)

STATEDIR (keep it outside the repo, e.g. /root/.cache/facesketch/train/sketch-lite) holds
`last.pt` (models, optimisers, step; written atomically, read with weights_only=True), `log.tsv`
(losses), `log.txt` (messages) and `samples/*.png`. `--resume` continues from last.pt; `--steps` is
the total step count to reach; SIGTERM / Ctrl-C write last.pt and stop. AMP (fp16 autocast + grad
scaling) on CUDA; plain fp32 on CPU. The shared pieces are in models/training.py, the
discriminators and GAN losses in models/discriminators.py.

Losses (as in HIDA's released training code): hinge GAN x1 from a 2-channel PatchGAN on [depth, sketch] (+ HIDA's
squared mean-gap penalty x2 on D), L1 x4, depth reconstruction sqrt(MSE) x4, gradient-direction
texture loss (GMSD-style) between the sketch and the photo x1. `--light-d` (default on CPU)
uses ndf=32 and 3 layers instead of HIDA's ndf=64, 4 layers to fit the CPU budget.
Augmentation: horizontal flip and a random crop of 232-256 px resized back to 256 (HIDA: pad to
286 and random-crop 256). The depth network also sees half of its faces shrunk into a wider frame
over a random smooth background (`--zoom-out`), so that it can locate a face in any picture.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from .data.pack import load_pack
from .depth_net import DepthNet, DepthNetConfig
from .discriminators import NLayerDiscriminator, d_hinge  # noqa: F401  (d_hinge: models.train.d_hinge)
from .export import DEFAULT_OUT, save_fp16
from .paths import SHIPPED_WEIGHTS_DIR
from .hida import HIDAConfig, HIDAGenerator, style_vector_from_labels
from .pix2pix import UNetPix2Pix
from .training import Amp, Checkpointer, Logger, frozen, save_grid, stop_on_signal, to_u8


# -- data ------------------------------------------------------------------------------------

class Batches:
    """Random augmented batches from a pack held in memory as uint8.

    Each sample is (photo, sketch, depth, style, parts): `parts` is the face-part weight map
    (models.data.face_parts; zeros when none is given), moved by the same geometric augmentation.
    `photometric` jitters the photo alone (exposure, contrast, colour, grey, noise): users' photos are
    not FS2K's."""

    def __init__(self, pack, batch: int, device: str, seed: int = 0, augment: bool = True, zoom_out: float = 0.0,
                 parts: np.ndarray | None = None, photometric: bool = False):
        self.pack, self.batch, self.device, self.augment = pack, batch, device, augment
        self.zoom_out = zoom_out  # probability of shrinking the face into a wider, synthetic scene
        self.parts, self.photometric = parts, photometric
        self.rng = np.random.default_rng(seed)

    def sample(self, idx=None):
        p = self.pack
        if idx is None:
            idx = self.rng.integers(0, len(p), self.batch)
        photo = torch.from_numpy(p.photos[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
        sketch = torch.from_numpy(p.sketches[idx])[:, None].float() / 127.5 - 1
        depth = torch.from_numpy(p.depths[idx])[:, None].float() / 255.0
        style = torch.from_numpy(p.styles[idx].astype(np.int64))
        parts = (torch.from_numpy(self.parts[idx])[:, None].float() / 255.0 if self.parts is not None
                 else torch.zeros_like(depth))
        x = torch.cat([photo, sketch, depth, parts], 1)
        if self.augment:
            x = self._augment(x)
            if self.photometric:
                x[:, :3] = self._jitter(x[:, :3])
        x = x.to(self.device)
        return x[:, :3], x[:, 3:4], x[:, 4:5], style.to(self.device), x[:, 5:6]

    def _jitter(self, photo):
        """Exposure, contrast, saturation and tint changes, sometimes grey, sometimes sensor noise."""
        out = []
        for img in photo:
            r = self.rng
            img = (img + 1) / 2
            grey = (img * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
            sat = 0.0 if r.random() < 0.1 else float(r.uniform(0.5, 1.4))
            img = grey + sat * (img - grey)
            img = img * torch.tensor(r.uniform(0.9, 1.1, 3), dtype=img.dtype).view(3, 1, 1)  # tint
            img = (img - 0.5) * float(r.uniform(0.7, 1.3)) + 0.5 + float(r.uniform(-0.12, 0.12))
            img = img.clamp(0, 1) ** float(np.exp(r.uniform(-0.3, 0.3)))
            if r.random() < 0.3:
                img = img + torch.randn_like(img) * float(r.uniform(0.005, 0.03))
            out.append(img.clamp(0, 1) * 2 - 1)
        return torch.stack(out)

    def _augment(self, x):
        out = []
        size = x.shape[-1]
        for img in x:
            if self.rng.random() < 0.5:
                img = img.flip(-1)
            crop = int(self.rng.integers(size - 24, size + 1))
            top, left = (int(self.rng.integers(0, size - crop + 1)) for _ in range(2))
            img = img[:, top:top + crop, left:left + crop]
            if crop != size:
                img = F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False)[0]
            if self.zoom_out and self.rng.random() < self.zoom_out:
                img = self._zoom_out(img)
            out.append(img)
        return torch.stack(out)

    def _zoom_out(self, img):
        """The aligned face shrunk into a larger frame over a smooth random background (depth 0 there),
        so the depth network learns to find a face that does not fill the picture."""
        size = img.shape[-1]
        small = int(size * self.rng.uniform(0.3, 0.9))
        face = F.interpolate(img[None], size=(small, small), mode="area")[0]
        g = torch.Generator().manual_seed(int(self.rng.integers(1 << 31)))
        cells = int(self.rng.integers(2, 9))
        field = torch.rand(1, 3, cells, cells, generator=g) * 2 - 1
        bg = F.interpolate(field, size=(size, size), mode="bicubic", align_corners=False)[0].clamp(-1, 1)
        sat = float(self.rng.uniform(0.1, 0.7))  # real backgrounds are rarely fully saturated
        bg = sat * bg + (1 - sat) * bg.mean(0, keepdim=True)
        bg = bg + torch.randn(3, size, size, generator=g) * float(self.rng.uniform(0, 0.08))
        extra = torch.zeros(img.shape[0] - 5, size, size)  # part weights: none outside the face
        canvas = torch.cat([bg.clamp(-1, 1), torch.ones(1, size, size), torch.zeros(1, size, size), extra], 0)
        top, left = (int(self.rng.integers(0, size - small + 1)) for _ in range(2))
        canvas[:, top:top + small, left:left + small] = face
        return canvas


# -- losses ----------------------------------------------------------------------------------

_PREWITT = torch.tensor([[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]) / 3.0


def gradient_direction_loss(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """HIDA's GMSDLoss: mean(1 - cos(angle between the Prewitt gradients of a and b)), channels summed."""
    kx = _PREWITT.to(a)[None, None]
    ky = kx.transpose(-1, -2)

    def grad(t):
        t = t.sum(1, keepdim=True)
        return F.conv2d(t, kx, padding=1), F.conv2d(t, ky, padding=1)

    ax, ay = grad(a)
    bx, by = grad(b)
    cos = (ax * bx + ay * by) / (torch.sqrt(ax * ax + ay * ay + eps) * torch.sqrt(bx * bx + by * by + eps))
    return (1 - cos).mean()


# -- training --------------------------------------------------------------------------------

class Trainer:
    def __init__(self, kind: str, args):
        self.kind, self.args = kind, args
        self.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.amp = Amp(self.device, enabled=not args.no_amp)
        os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)
        torch.manual_seed(args.seed)
        if kind == "depth":
            self.config = DepthNetConfig().to_dict()
            self.G = DepthNet(DepthNetConfig.from_dict(self.config))
        elif kind == "sketch":
            self.config = HIDAConfig.named(args.config).to_dict()
            self.G = HIDAGenerator(HIDAConfig.from_dict(self.config))
        else:
            self.config = {"ngf": args.ngf}
            self.G = UNetPix2Pix(ngf=args.ngf)
        self.G.to(self.device)
        self.opt_g = torch.optim.AdamW(self.G.parameters(), lr=args.lr, betas=(0.5, 0.999))
        self.D = self.opt_d = None
        if kind != "depth":
            light = args.light_d if args.light_d is not None else not self.device.startswith("cuda")
            ndf, n_layers = (32, 3) if light else (64, 4)
            d_in = 2 if kind == "sketch" else 4  # HIDA: [depth, sketch]; pix2pix: [photo, sketch]
            self.D = NLayerDiscriminator(d_in, ndf, n_layers).to(self.device)
            self.opt_d = torch.optim.AdamW(self.D.parameters(), lr=self._lr_d(), betas=(0.5, 0.999))
            self.d_desc = f"ndf={ndf} n_layers={n_layers}"
        self.perceptual = None
        if kind == "sketch" and getattr(args, "perceptual", 0) > 0:
            from .vgg16_hed import PerceptualLoss
            layers = tuple(args.vgg_layers.split(","))
            self.perceptual = PerceptualLoss(layers=layers).to(self.device)
        self.step = 0
        self.log = Logger(args.out)
        self.checkpoint = Checkpointer(os.path.join(args.out, "last.pt"), every_steps=args.save_every)
        path = self.checkpoint.path
        if args.resume and self.checkpoint.exists():
            ck = self.checkpoint.load(self.device)
            if ck["kind"] != kind or ck["config"] != self.config:
                raise SystemExit(f"{path} is a {ck['kind']} run with another config; use a fresh --out")
            self.G.load_state_dict(ck["G"])
            self.opt_g.load_state_dict(ck["opt_g"])
            if self.D is not None and ck.get("D") is not None:
                self.D.load_state_dict(ck["D"])
                self.opt_d.load_state_dict(ck["opt_d"])
            self.amp.load_state_dict(ck.get("scaler"))
            # the learning rates given now win over the stored ones (a schedule changed between sessions)
            for opt, lr in ((self.opt_g, args.lr), (self.opt_d, self._lr_d())):
                for group in (opt.param_groups if opt is not None else ()):
                    group["lr"] = lr
            self.step = ck["step"]
            self.log(f"resumed {kind} at step {self.step}")
        elif self.checkpoint.exists() and not args.resume:
            raise SystemExit(f"{path} exists: pass --resume to continue or choose another --out")
        elif getattr(args, "init_from", None):
            self._init_from(args.init_from)

    def _lr_d(self) -> float:
        return getattr(self.args, "lr_d", None) or self.args.lr

    def _init_from(self, weights: str) -> None:
        """Start a new run from exported weights (e.g. the shipped ones), converting transposed-conv
        upsampling to resize-conv where the config changed (models.hida.adapt_state_dict)."""
        from .export import load_weights
        from .hida import adapt_state_dict
        src = load_weights(weights, self.kind).state_dict()
        state = adapt_state_dict(src, self.G) if self.kind == "sketch" else src
        self.G.load_state_dict(state, strict=True)
        self.log(f"initialised {self.kind} from {weights}")

    def state(self) -> dict:
        """The last.pt payload (kind, config, step, G, opt_g, D, opt_d; scaler: the AMP loss scale)."""
        return {"kind": self.kind, "config": self.config, "step": self.step, "G": self.G.state_dict(),
                "opt_g": self.opt_g.state_dict(),
                "D": self.D.state_dict() if self.D is not None else None,
                "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
                "scaler": self.amp.state_dict()}

    def save(self) -> str:
        self.checkpoint.save(self.state())
        return self.checkpoint.path

    def train_step(self, photo, sketch, depth, style, parts=None) -> dict:
        amp = self.amp
        if self.kind == "depth":
            with amp.autocast():
                pred = self.G(photo)
                loss = F.l1_loss(pred.float(), depth) + gradient_direction_loss(pred.float(), depth) * 0.1
            amp.step(self.opt_g, loss)
            amp.update()
            return {"l1+grad": loss.item()}

        style_vec = style_vector_from_labels(style)
        cond = depth if self.kind == "sketch" else photo
        depth_rec = None
        # One generator forward serves both updates (saves a quarter of the step on CPU).
        with amp.autocast():
            if self.kind == "sketch":
                fake, depth_rec = self.G(photo, depth, style_vec)
            else:
                fake = self.G(photo)
            d_real = self.D(torch.cat([cond, sketch], 1))
            d_fake = self.D(torch.cat([cond, fake.detach()], 1))
            loss_d = d_hinge(d_real.float(), d_fake.float())
        amp.step(self.opt_d, loss_d)
        with frozen(self.D):  # the generator loss must not leave gradients in D
            logs = self._generator_step(photo, sketch, depth, cond, fake, depth_rec, parts)
        amp.update()
        return {"d": loss_d.item(), **logs}

    def _generator_step(self, photo, sketch, depth, cond, fake, depth_rec, parts) -> dict:
        with self.amp.autocast():
            fake32 = fake.float()
            loss_gan = -self.D(torch.cat([cond, fake], 1)).float().mean()
            # face parts weigh 1 + parts_weight (eyes, brows, nose, mouth, outline); mean weight kept at 1
            weight = None if parts is None else 1 + getattr(self.args, "parts_weight", 0.0) * parts
            if weight is None:
                loss_l1 = F.l1_loss(fake32, sketch)
            else:
                loss_l1 = ((fake32 - sketch).abs() * weight).mean() / weight.mean()
            logs = {"gan": loss_gan.item(), "l1": loss_l1.item()}
            if self.kind == "sketch":
                loss_geo = torch.sqrt(F.mse_loss(depth_rec.float(), depth) + 1e-8)
                loss_tex = gradient_direction_loss(fake32.repeat(1, 3, 1, 1), photo)
                loss_g = getattr(self.args, "gan_weight", 1.0) * loss_gan + 4 * loss_l1 + 4 * loss_geo + loss_tex
                logs.update(geo=loss_geo.item(), tex=loss_tex.item())
                if self.perceptual is not None:
                    texture_weight = getattr(self.args, "texture", 0.0)
                    loss_p, loss_t = self.perceptual(fake32, sketch, mask=weight, texture=True)
                    loss_g = loss_g + self.args.perceptual * loss_p + texture_weight * loss_t
                    logs["vgg"] = loss_p.item()
                    logs["gram"] = loss_t.item()
            else:
                loss_g = loss_gan + 100 * loss_l1  # pix2pix's weights
        self.amp.step(self.opt_g, loss_g)
        return logs

    @torch.no_grad()
    def write_samples(self, sample_batch) -> str:
        photo, sketch, depth = sample_batch[:3]
        self.G.eval()
        rows = []
        for i in range(photo.shape[0]):
            row = [to_u8(photo[i]), to_u8(depth[i], 0)]
            if self.kind == "depth":
                row.append(to_u8(self.G(photo[i:i + 1])[0], 0))
            elif self.kind == "sketch":
                for s in (0, 1, 2):
                    sv = style_vector_from_labels(torch.tensor([s], device=photo.device))
                    out, rec = self.G(photo[i:i + 1], depth[i:i + 1], sv)
                    row.append(to_u8(out[0]))
                row.append(to_u8(rec[0], 0))
                row.append(to_u8(sketch[i]))
            else:
                row.append(to_u8(self.G(photo[i:i + 1])[0]))
                row.append(to_u8(sketch[i]))
            rows.append(row)
        self.G.train()
        return save_grid(rows, os.path.join(self.args.out, "samples", f"step_{self.step:06d}.png"))


def run(kind: str, args) -> int:
    torch.set_num_threads(args.threads)
    trainer = Trainer(kind, args)
    pack = load_pack(args.data, "train")
    if kind == "depth":  # photos without a detected face have an all-black depth: nothing to learn from
        keep = np.flatnonzero(pack.face_found)
        pack = _subset(pack, keep)
    test = load_pack(args.data, "test", limit=64)
    zoom_out = args.zoom_out if args.zoom_out is not None else (0.5 if kind == "depth" else 0.0)
    parts = None
    if kind == "sketch" and args.parts_weight > 0:
        from .data.face_parts import parts_maps
        parts = parts_maps(args.data, pack.ids, pack.photos.shape[1])
    batches = Batches(pack, args.batch, trainer.device, seed=args.seed + trainer.step, zoom_out=zoom_out,
                      parts=parts, photometric=args.photometric)
    fixed = Batches(test, 4, trainer.device, augment=False).sample(np.unique(np.array([0, 13, 27, 41]) % len(test)))
    log = trainer.log
    log(f"{kind}: {sum(p.numel() for p in trainer.G.parameters()) / 1e6:.2f}M params, "
        f"{len(pack)} training images, device {trainer.device}"
        + (f", discriminator {trainer.d_desc}" if trainer.D is not None else ""))
    log.start()
    with stop_on_signal() as stop:
        while trainer.step < args.steps and not stop.now:
            log.add(trainer.train_step(*batches.sample()))
            trainer.step += 1
            if trainer.step % args.log_every == 0 or trainer.step == args.steps:
                log.scalars(trainer.step)
            if trainer.checkpoint.due(trainer.step):
                trainer.save()
            if trainer.step % args.sample_every == 0:
                trainer.write_samples(fixed)
            if args.export and trainer.step % args.export_every == 0:
                _export(trainer, args)
        log.scalars(trainer.step)  # the steps since the last line (a stopped run)
        trainer.save()
        log(f"{'stopped' if stop.now else 'saved'} at step {trainer.step}: {trainer.checkpoint.path}; "
            f"samples: {trainer.write_samples(fixed)}")
        if args.export:
            _export(trainer, args)
    return 0


def _export(trainer: Trainer, args) -> None:
    out = args.export_path or os.path.join(SHIPPED_WEIGHTS_DIR, DEFAULT_OUT[trainer.kind])
    save_fp16(trainer.G, trainer.kind, out, {"step": trainer.step})
    trainer.log(f"exported {out}")


def _subset(pack, keep):
    from dataclasses import replace
    return replace(pack, ids=[pack.ids[i] for i in keep], photos=pack.photos[keep], sketches=pack.sketches[keep],
                   depths=pack.depths[keep], styles=pack.styles[keep], genders=pack.genders[keep],
                   landmarks=pack.landmarks[keep], face_found=pack.face_found[keep],
                   sources=[pack.sources[i] for i in keep] if pack.sources else [])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m facesketch.models.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["sketch", "depth", "pix2pix", "face"])
    ap.add_argument("--data", required=True, help="FS2K pack directory (models.data.fs2k)")
    ap.add_argument("--out", required=True, help="training state directory, outside the repo")
    ap.add_argument("--config", default="lite", choices=["lite", "official"], help="HIDA size (sketch only)")
    ap.add_argument("--steps", type=int, default=20000, help="total steps to reach")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--ngf", type=int, default=24, help="pix2pix width (24 = same size as lite HIDA)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init-from", default=None, help="start a new run from exported weights (sketch: converts "
                    "transposed-conv upsampling to resize-conv)")
    ap.add_argument("--lr-d", type=float, default=None, help="discriminator learning rate (default: --lr)")
    ap.add_argument("--gan-weight", type=float, default=1.0, help="weight of the generator's GAN loss (sketch)")
    ap.add_argument("--perceptual", type=float, default=0.0,
                    help="weight of the HED-VGG16 perceptual loss (sketch; models.vgg16_hed must be prepared)")
    ap.add_argument("--vgg-layers", default="relu1_2,relu2_2,relu3_3", help="VGG layers of the perceptual loss")
    ap.add_argument("--texture", type=float, default=0.0,
                    help="weight of the texture (VGG Gram matrix) loss: the artist's stroke and shading statistics")
    ap.add_argument("--parts-weight", type=float, default=0.0,
                    help="extra loss weight on eyes, brows, nose, mouth and outline (sketch; from the pack's meshes)")
    ap.add_argument("--photometric", action="store_true", help="jitter exposure, contrast and colour of the photos")
    ap.add_argument("--zoom-out", type=float, default=None,
                    help="probability of a zoomed-out (face in a wider scene) sample; default 0.5 for depth, else 0")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--light-d", dest="light_d", action="store_true", default=None)
    ap.add_argument("--full-d", dest="light_d", action="store_false")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--sample-every", type=int, default=200)
    ap.add_argument("--export", action="store_true", help="write fp16 safetensors to models/weights/")
    ap.add_argument("--export-path", default=None)
    ap.add_argument("--export-every", type=int, default=500)
    return ap


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["face"]:  # the face model's training lives in models/train_face.py (imported only here)
        from .train_face import main as train_face_main
        return train_face_main(argv[1:])
    if argv[:1] == ["locator"]:  # the sketch face locator: models/train_locator.py
        from .train_locator import main as train_locator_main
        return train_locator_main(argv[1:])
    args = build_parser().parse_args(argv)
    return run(args.kind, args)


if __name__ == "__main__":
    sys.exit(main())
