"""DeepFaceDrawing (Chen et al., SIGGRAPH 2020) in plain PyTorch.

One code path, two configurations:

* ``official``: the released network exactly (512 canvas, official crop boxes and widths, BatchNorm with
  Jittor semantics, ``LeakyReLU(1)`` = identity inside the encoder/decoder blocks, affine InstanceNorm in the
  generator). ``load_official_deepfacedrawing(dir)`` reads the released Jittor ``.pkl`` files and the raw
  float32 feature banks. Module attribute names follow the Jittor code so parameter names match 1:1
  (those of the authors' Jittor release).
* ``lite``: our own, trained on FS2K: 256 canvas with the boxes scaled, narrower networks.

Pipeline: sketch -> five component crops (the remainder is a copy of the sketch with the four boxes whitened)
-> component encoders (512/256-d latents) -> [manifold projection, models/projection.py] -> feature-mapping
decoders (C-channel maps) pasted onto the remainder map (mouth, nose[:-trim], eye1, eye2) -> generator -> RGB.
The image decoders turn latents back into sketches; they are used only for the shadow guide.

Tensors: sketches are (B, 1, S, S) float in [-1, 1] (white = +1, strokes = -1), images (B, 3, S, S) in [-1, 1].
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import safe_pickle
from .upsampling import NearestUpConv

# Component order of the official code (dict order); the remainder is always processed last.
COMPONENTS = ("eye1", "eye2", "nose", "mouth", "remainder")
# The official file names use '' for the remainder.
OFFICIAL_KEY = {"eye1": "eye1", "eye2": "eye2", "nose": "nose", "mouth": "mouth", "remainder": ""}
# Paste order onto the remainder feature map (later ones overwrite earlier ones).
PASTE_ORDER = ("mouth", "nose", "eye1", "eye2")

OFFICIAL_BOXES = {  # (x_left, y_top, size) on the 512 canvas
    "eye1": (108, 156, 128),
    "eye2": (255, 156, 128),
    "nose": (182, 232, 160),
    "mouth": (169, 301, 192),
}
OFFICIAL_NOSE_TRIM = 36  # the nose map loses its bottom 36 rows (of 160) when pasted


def scaled_boxes(canvas: int) -> dict[str, tuple[int, int, int]]:
    """The official boxes scaled to another canvas by the project's face template (the same boxes the data
    pack is aligned to; sizes stay divisible by 16 for canvas 256)."""
    from .data.face_template import crop_boxes
    boxes = crop_boxes(canvas)
    return {k: tuple(boxes[k]) for k in OFFICIAL_BOXES}


@dataclasses.dataclass(frozen=True)
class DFDConfig:
    """Everything that differs between the official network and our lite one."""

    name: str
    canvas: int
    boxes: Mapping[str, tuple[int, int, int]]   # eye1, eye2, nose, mouth; the remainder is the whole canvas
    nose_trim: int                               # rows cut from the bottom of the nose map before pasting
    latent: int                                  # latent size of every component
    enc_widths: tuple[int, ...]                  # encoder block outputs; the last one feeds the FC
    img_dec_widths: tuple[int, ...]              # image decoder: FC channels, then one per up block
    fm_widths: tuple[int, ...]                   # feature-mapping decoder: FC channels, then one per up block
    feature_channels: int                        # channels of the assembled feature map (netG input)
    ngf: int
    g_downsample: int
    g_blocks: int
    block_slope: float = 1.0                     # LeakyReLU slope in Enc/Dec blocks; 1.0 = identity (official)
    bn_momentum: float = 0.1                     # PyTorch convention: running = (1-m)*running + m*batch
    fm_norm_stats: str = "sample"                # FM decoders' BN at test time: "sample" (per-call statistics,
    #                                              as the official demo runs) or "running"
    g_upsample: str = "transpose"                # generator upsampling: "transpose" (official, stride-2
    #                                              transposed conv) or "resize" (nearest x2 + 3x3 conv: no
    #                                              checkerboard, the GAN texture of the first lite faces)

    @property
    def n_down(self) -> int:
        return len(self.enc_widths)

    def box(self, component: str) -> tuple[int, int, int]:
        return (0, 0, self.canvas) if component == "remainder" else tuple(self.boxes[component])

    def grid(self, component: str) -> int:
        size = self.box(component)[2]
        g = size // 2 ** self.n_down
        if g * 2 ** self.n_down != size:
            raise ValueError(f"{self.name}: {component} box size {size} is not divisible by 2**{self.n_down}")
        return g


def official_config() -> DFDConfig:
    return DFDConfig(
        name="official", canvas=512, boxes=dict(OFFICIAL_BOXES), nose_trim=OFFICIAL_NOSE_TRIM, latent=512,
        enc_widths=(32, 64, 128, 256, 512), img_dec_widths=(512, 256, 128, 64, 32, 32),
        fm_widths=(512, 256, 256, 128, 64, 64), feature_channels=32, ngf=56, g_downsample=4, g_blocks=9,
        # Jittor's BatchNorm(momentum=0.9) updates running + (batch - running) * 0.9: PyTorch's convention
        block_slope=1.0, bn_momentum=0.9, fm_norm_stats="sample")


def lite_config() -> DFDConfig:
    # 256 canvas: boxes halve (64/80/96), so 4 down blocks keep integer grids (4/5/6/16). The FC layers of the
    # remainder dominate the size (32*16*16 -> 256), which keeps all weights well under 40 MB in fp16.
    return DFDConfig(
        name="lite", canvas=256, boxes=scaled_boxes(256), nose_trim=OFFICIAL_NOSE_TRIM // 2, latent=256,
        enc_widths=(16, 32, 64, 32), img_dec_widths=(32, 48, 32, 16, 8),
        fm_widths=(32, 64, 48, 32, 16), feature_channels=16, ngf=16, g_downsample=3, g_blocks=6,
        block_slope=0.2, fm_norm_stats="sample")


def lite2_config() -> DFDConfig:
    # lite with half the latent (128) and a 16-channel bottleneck before and after every FC: the remainder's FC
    # layers shrink from 2.1M to 0.5M parameters each, so the weights and a feature bank of several thousand faces
    # stay under 20 MB in fp16. The generator keeps lite's width (its speed) but upsamples by resize + conv.
    return DFDConfig(
        name="lite2", canvas=256, boxes=scaled_boxes(256), nose_trim=OFFICIAL_NOSE_TRIM // 2, latent=128,
        enc_widths=(16, 32, 64, 16), img_dec_widths=(16, 48, 32, 16, 8),
        fm_widths=(16, 64, 48, 32, 16), feature_channels=16, ngf=16, g_downsample=3, g_blocks=6,
        block_slope=0.2, fm_norm_stats="sample", g_upsample="resize")


CONFIGS = {"official": official_config, "lite": lite_config, "lite2": lite2_config}


def get_config(name: str) -> DFDConfig:
    try:
        return CONFIGS[name]()
    except KeyError:
        raise ValueError(f"unknown DeepFaceDrawing config {name!r}; choose from {', '.join(CONFIGS)}") from None


# ---------------------------------------------------------------------------------------------- layers

class JitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose statistics source can be switched.

    stats="running": ordinary BatchNorm (batch statistics in train mode, running statistics in eval mode).
    stats="sample": always normalise each sample by its own per-channel mean and biased variance over H x W,
    then apply the learned affine; buffers are never updated. With batch size 1 this is exactly what the
    official demo computes in its FM decoders (Jittor's eval() never reaches them), and it keeps a batch of
    faces independent of each other.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, stats: str = "running"):
        super().__init__(num_features, eps=1e-5, momentum=momentum)
        self.stats = stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stats == "sample":
            return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)
        return super().forward(x)


class EncoderBlock(nn.Module):
    """Conv 4x4 stride 2 -> BN -> LeakyReLU(slope); halves H and W. Official slope 1 = identity."""

    def __init__(self, cin: int, cout: int, cfg: DFDConfig, bn_stats: str = "running"):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=True)
        self.bn = JitBatchNorm2d(cout, cfg.bn_momentum, bn_stats)
        self.relu = nn.LeakyReLU(cfg.block_slope)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class DecoderBlock(nn.Module):
    """ConvTranspose 4x4 stride 2 -> BN -> LeakyReLU(slope), in a Sequential named `conv` (official names)."""

    def __init__(self, cin: int, cout: int, cfg: DFDConfig, bn_stats: str = "running"):
        super().__init__()
        self.conv = nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, output_padding=0),
                                  JitBatchNorm2d(cout, cfg.bn_momentum, bn_stats), nn.LeakyReLU(cfg.block_slope))

    def forward(self, x):
        return self.conv(x)


class ResnetBlock(nn.Module):
    """x + [pad, conv3, norm, relu, pad, conv3, norm]; parameters at conv_block indices 1, 2, 5, 6."""

    def __init__(self, dim: int, norm: nn.Module, norm2: nn.Module):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm, nn.ReLU(True),
                                        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm2)

    def forward(self, x):
        return x + self.conv_block(x)


def bn_resblock(dim: int, cfg: DFDConfig, bn_stats: str = "running") -> ResnetBlock:
    return ResnetBlock(dim, JitBatchNorm2d(dim, cfg.bn_momentum, bn_stats), JitBatchNorm2d(dim, cfg.bn_momentum, bn_stats))


def in_resblock(dim: int) -> ResnetBlock:
    # Jittor's InstanceNorm2d always carries an affine weight and bias.
    return ResnetBlock(dim, nn.InstanceNorm2d(dim, affine=True), nn.InstanceNorm2d(dim, affine=True))


# ---------------------------------------------------------------------------------------------- networks

class EncoderGenerator_Res(nn.Module):
    """Component encoder: (B,1,S,S) -> (B, latent). Official name kept for the weight files."""

    def __init__(self, cfg: DFDConfig, image_size: int):
        super().__init__()
        layers, cin = [], 1
        for w in cfg.enc_widths:
            layers += [EncoderBlock(cin, w, cfg), bn_resblock(w, cfg)]
            cin = w
        self.conv = nn.Sequential(*layers)
        grid = image_size // 2 ** cfg.n_down
        self.fc_mu = nn.Sequential(nn.Linear(cin * grid * grid, cfg.latent))

    def forward(self, x):
        return self.fc_mu(self.conv(x).flatten(1))


class _FCDecoder(nn.Module):
    """Shared shape of both decoders: FC -> (C0, g, g) -> [Res, Dec]* -> Res -> pad -> conv5x5."""

    def __init__(self, cfg: DFDConfig, image_size: int, widths: tuple[int, ...], out_channels: int, bn_stats: str):
        super().__init__()
        self.grid = image_size // 2 ** cfg.n_down
        self.channels = widths[0]
        self.fc = nn.Sequential(nn.Linear(cfg.latent, widths[0] * self.grid * self.grid))
        layers = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [bn_resblock(cin, cfg, bn_stats), DecoderBlock(cin, cout, cfg, bn_stats)]
        layers += [bn_resblock(widths[-1], cfg, bn_stats), nn.ReflectionPad2d(2), nn.Conv2d(widths[-1], out_channels, 5)]
        self.conv = nn.Sequential(*layers)

    def forward(self, z):
        return self.conv(self.fc(z).view(z.shape[0], self.channels, self.grid, self.grid))


class DecoderGenerator_image_Res(_FCDecoder):
    """Latent -> (B,1,S,S) sketch, no output activation (treated as [-1,1]). Used for shadows."""

    def __init__(self, cfg: DFDConfig, image_size: int):
        super().__init__(cfg, image_size, cfg.img_dec_widths, 1, "running")


class DecoderGenerator_feature_Res(_FCDecoder):
    """Latent -> (B, feature_channels, S, S) feature map for the generator."""

    def __init__(self, cfg: DFDConfig, image_size: int):
        super().__init__(cfg, image_size, cfg.fm_widths, cfg.feature_channels, cfg.fm_norm_stats)


class GlobalGenerator(nn.Module):
    """pix2pixHD global generator with affine InstanceNorm; attribute `model` as in the official file."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int, n_downsampling: int, n_blocks: int,
                 upsample: str = "transpose"):
        super().__init__()
        if upsample not in ("transpose", "resize"):
            raise ValueError(f"generator upsampling must be 'transpose' or 'resize', got {upsample!r}")
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf, affine=True), nn.ReLU(True)]
        for i in range(n_downsampling):
            m = 2 ** i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * m * 2, affine=True), nn.ReLU(True)]
        m = 2 ** n_downsampling
        layers += [in_resblock(ngf * m) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            m = 2 ** (n_downsampling - i)
            up = nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1) if upsample == "transpose" \
                else NearestUpConv(ngf * m, ngf * m // 2)
            layers += [up, nn.InstanceNorm2d(ngf * m // 2, affine=True), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class DeepFaceDrawing(nn.Module):
    """The whole sketch -> face network (without the feature banks; see models/projection.py)."""

    def __init__(self, cfg: DFDConfig):
        super().__init__()
        self.cfg = cfg
        size = {c: cfg.box(c)[2] for c in COMPONENTS}
        for c in COMPONENTS:
            cfg.grid(c)  # fail early on boxes that do not fit the network
        self.encoders = nn.ModuleDict({c: EncoderGenerator_Res(cfg, size[c]) for c in COMPONENTS})
        self.image_decoders = nn.ModuleDict({c: DecoderGenerator_image_Res(cfg, size[c]) for c in COMPONENTS})
        self.feature_decoders = nn.ModuleDict({c: DecoderGenerator_feature_Res(cfg, size[c]) for c in COMPONENTS})
        self.generator = GlobalGenerator(cfg.feature_channels, 3, cfg.ngf, cfg.g_downsample, cfg.g_blocks,
                                         cfg.g_upsample)

    def set_feature_norm(self, stats: str) -> "DeepFaceDrawing":
        """How the FM decoders' BatchNorm normalises: "sample" (per-call statistics, the official demo's
        behaviour) or "running" (the stored running statistics in eval mode)."""
        if stats not in ("sample", "running"):
            raise ValueError(f"feature norm statistics must be 'sample' or 'running', got {stats!r}")
        for m in self.feature_decoders.modules():
            if isinstance(m, JitBatchNorm2d):
                m.stats = stats
        return self

    # -- sketch side ---------------------------------------------------------------------------------

    def crop_components(self, sketch: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B,1,S,S) sketch in [-1,1] -> crops; the remainder is a whitened COPY (the input is untouched)."""
        S = self.cfg.canvas
        if sketch.shape[-2:] != (S, S) or sketch.shape[1] != 1:
            raise ValueError(f"expected a (B,1,{S},{S}) sketch, got {tuple(sketch.shape)}")
        crops = {}
        remainder = sketch.clone()
        for c in COMPONENTS[:-1]:
            x, y, n = self.cfg.box(c)
            crops[c] = sketch[:, :, y:y + n, x:x + n]
            remainder[:, :, y:y + n, x:x + n] = 1.0  # white
        crops["remainder"] = remainder
        return crops

    def encode(self, sketch: torch.Tensor) -> dict[str, torch.Tensor]:
        crops = self.crop_components(sketch)
        return {c: self.encoders[c](crops[c]) for c in COMPONENTS}

    def decode_images(self, latents: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Latents -> component sketches (B,1,n,n), nominally in [-1,1] (not clamped)."""
        return {c: self.image_decoders[c](z) for c, z in latents.items()}

    # -- face side -----------------------------------------------------------------------------------

    def feature_maps(self, latents: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {c: self.feature_decoders[c](latents[c]) for c in COMPONENTS}

    def assemble(self, maps: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Paste the component maps onto (a copy of) the remainder map, official order, no blending."""
        canvas = maps["remainder"].clone()
        for c in PASTE_ORDER:
            x, y, n = self.cfg.box(c)
            m = maps[c]
            if c == "nose":
                m = m[:, :, : n - self.cfg.nose_trim]
            canvas[:, :, y:y + m.shape[2], x:x + m.shape[3]] = m
        return canvas

    def generate(self, latents: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.generator(self.assemble(self.feature_maps(latents)))

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        """Sketch -> face without manifold projection (blend 0 everywhere)."""
        return self.generate(self.encode(sketch))


# ---------------------------------------------------------------------------------------------- I/O helpers

def sketch_to_tensor(gray: np.ndarray) -> torch.Tensor:
    """uint8 (H,W) or (B,H,W) sketch, white = 255 -> float (B,1,H,W) in [-1,1] (official mapping)."""
    t = torch.from_numpy(np.ascontiguousarray(gray)).float()
    if t.dim() == 2:
        t = t[None]
    return ((t - 127.5) / 127.5)[:, None]


def image_to_uint8(img: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) in [-1,1] -> uint8 (B,H,W,3) RGB, as the official post-processing: (x+1)/2*255, clipped."""
    x = ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()


# ---------------------------------------------------------------------------------------------- official weights

def official_files(key: str) -> dict[str, str]:
    """Module prefix in our model -> official file name, for one component key."""
    k = OFFICIAL_KEY[key]
    return {
        f"encoders.{key}": f"latest_net_encoder_{k}.pkl",
        f"image_decoders.{key}": f"latest_net_decoder_{k}_image.pkl",
        f"feature_decoders.{key}": f"latest_net_DE_{k}.pkl",
    }


def _find(root: str, name: str) -> str:
    for sub in ("", "AE_whole", "Combine", os.path.join("Params", "AE_whole"), os.path.join("Params", "Combine")):
        p = os.path.join(root, sub, name)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"DeepFaceDrawing weight file {name} not found under {root} "
                            "(expected the released Params/AE_whole and Params/Combine folders)")


def _read_pkl(path: str) -> dict[str, np.ndarray]:
    d = safe_pickle.load(path)  # a downloaded file: numpy arrays and plain data only, nothing it names runs
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a pickled dict of arrays, got {type(d).__name__}")
    # Newer Jittor versions may insert a `layers.` token into Sequential paths.
    return {k.replace("layers.", ""): np.asarray(v) for k, v in d.items()}


def load_official_deepfacedrawing(root: str, cfg: DFDConfig | None = None, device: str | torch.device = "cpu",
                                  report: dict | None = None):
    """Read the released Jittor weights and feature banks.

    Returns (model, banks) with banks = {"male": {component: (N,latent) float32}, "female": {...}} (the official
    code's sex 0 = male, 1 = female). The row count of a bank comes from its file size. Every array of every
    file must land in a parameter/buffer of matching shape and every parameter/buffer (except BatchNorm's
    num_batches_tracked, which Jittor does not have) must be filled; otherwise ValueError. `report`, when
    given, receives {"files": n, "tensors": n}.
    """
    cfg = cfg or official_config()
    model = DeepFaceDrawing(cfg)
    state = model.state_dict()
    filled: set[str] = set()
    n_files = 0
    sources = {"generator": "latest_net_G.pkl"}
    for c in COMPONENTS:
        sources.update(official_files(c))
    new_state = {}
    for prefix, fname in sources.items():
        arrays = _read_pkl(_find(root, fname))
        n_files += 1
        for name, arr in arrays.items():
            key = f"{prefix}.{name}"
            if key not in state:
                raise ValueError(f"{fname}: tensor {name!r} has no place in the model ({key})")
            if tuple(arr.shape) != tuple(state[key].shape):
                raise ValueError(f"{fname}: {name} has shape {tuple(arr.shape)}, model expects {tuple(state[key].shape)}")
            new_state[key] = torch.from_numpy(np.array(arr, dtype=np.float32))
            filled.add(key)
    missing = [k for k in state if k not in filled and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"official weights leave {len(missing)} tensors unset, e.g. {missing[:5]}")
    model.load_state_dict(new_state, strict=False)
    banks: dict[str, dict[str, np.ndarray]] = {"male": {}, "female": {}}
    for gender, prefix in (("male", "man"), ("female", "female")):
        for c in COMPONENTS:
            path = _find(root, f"{prefix}_{OFFICIAL_KEY[c]}_feature.bin")
            raw = np.fromfile(path, dtype=np.float32)
            if raw.size % cfg.latent:
                raise ValueError(f"{path}: {raw.size} floats is not a whole number of {cfg.latent}-d rows")
            banks[gender][c] = raw.reshape(-1, cfg.latent)
            n_files += 1
    if report is not None:
        report.update(files=n_files, tensors=len(filled))
    return model.to(device).eval(), banks


# ---------------------------------------------------------------------------------------------- our weights

def save_safetensors(model: DeepFaceDrawing, path: str, bank: np.ndarray | None = None,
                     bank_gender: np.ndarray | None = None, extra_meta: Mapping[str, str] | None = None,
                     int8_weights: bool = True) -> None:
    """safetensors: the model state in fp16 (no num_batches_tracked; with `int8_weights` the large conv and linear
    weights as int8 with a float32 scale per output channel, see quantize_weight) plus, optionally, the feature bank
    (`bank.<component>` (N,latent) int8 with `bank_scale.<component>` (latent,) fp16, see quantize_bank) and
    `bank_gender` (N,) uint8 (0 male, 1 female)."""
    from safetensors.torch import save_file
    tensors = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        if int8_weights and k.endswith(".weight") and v.dim() >= 2 and v.numel() >= INT8_MIN_NUMEL:
            tensors[k], tensors[WEIGHT_SCALE + k] = quantize_weight(v)
        else:
            tensors[k] = v.detach().to(torch.float16).contiguous().cpu()
    if bank is not None:
        for c, rows in bank.items():
            tensors[f"bank.{c}"], tensors[f"bank_scale.{c}"] = quantize_bank(torch.as_tensor(rows))
        tensors["bank_gender"] = torch.as_tensor(np.asarray(bank_gender, dtype=np.uint8))
    meta = {"config": model.cfg.name, "format": "facesketch-deepfacedrawing-1"}
    meta.update(extra_meta or {})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"  # a running engine may be reading the old file: replace it atomically
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)


# Weights of at least this many values are stored as int8 (biases, norms and small layers stay fp16).
INT8_MIN_NUMEL = 4096
WEIGHT_SCALE = "int8_scale."


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A conv or linear weight (out, ...) -> (int8 of the same shape, float32 scale (out, 1, ...)), symmetric per
    output channel: half the bytes of fp16, and an error of at most half a step (max |w| of the channel / 254),
    which the evaluation shows does not change the faces (docs/results/face.md). The scales stay float32: a
    nearly dead channel's would lose its precision in fp16's subnormal range, and they are few."""
    w = w.detach().float().cpu()
    scale = (w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True) / 127).clamp_min(1e-30)
    q = torch.round(w / scale).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def dequantize_weights(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model state in float32 from a file's tensors (int8 weights times their scale; the bank left out)."""
    state = {}
    for k, v in tensors.items():
        if k.startswith("bank") or k.startswith(WEIGHT_SCALE):
            continue
        scale = tensors.get(WEIGHT_SCALE + k)
        state[k] = v.float() * scale.float() if scale is not None else v.float()
    return state


def quantize_bank(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) latents -> (int8 (N, D), fp16 scale (D,)), symmetric per dimension. Half the bytes of fp16 (the bank
    is the largest tensor group of the file), and the error, at most half a step (max |x| / 254 per dimension),
    is far below the spread of the neighbours that manifold projection interpolates between."""
    rows = rows.float()
    scale = (rows.abs().amax(0) / 127).clamp_min(1e-8).to(torch.float16)
    q = torch.round(rows / scale.float()).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def dequantize_bank(tensors: Mapping[str, torch.Tensor], component: str) -> torch.Tensor:
    """The float32 bank of one component; files written before quantize_bank hold it as plain fp16."""
    rows = tensors[f"bank.{component}"].float()
    scale = tensors.get(f"bank_scale.{component}")
    return rows * scale.float() if scale is not None else rows


def load_safetensors(path: str, device: str | torch.device = "cpu"):
    """-> (model in eval mode, float32, on device; bank dict {component: (N,latent) float32 tensor} or None;
    bank_gender uint8 tensor or None; metadata dict)."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model = DeepFaceDrawing(get_config(meta.get("config", "lite")))
    state = dequantize_weights(tensors)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the {model.cfg.name} config "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    bank = {c: dequantize_bank(tensors, c).to(device) for c in COMPONENTS if f"bank.{c}" in tensors} or None
    gender = tensors.get("bank_gender")
    return model.to(device).eval(), bank, (gender.to(device) if gender is not None else None), meta


def resave_safetensors(path: str, out: str) -> None:
    """A face weights file written in any earlier form (fp16 weights, fp16 bank) -> the current one (int8 weights
    and bank), the same model, bank, genders and metadata."""
    model, bank, gender, meta = load_safetensors(path)
    rows = {c: v.numpy() for c, v in bank.items()} if bank is not None else None
    save_safetensors(model, out, rows, gender.numpy() if gender is not None else None,
                     {k: v for k, v in meta.items() if k not in ("config", "format")})


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
