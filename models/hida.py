"""HIDA's generator (Gao et al., ICCV 2023) in plain PyTorch, in two sizes of one code path.

A U-Net with two stems (photo, depth), a MetaAconC encoder and a decoder of IDA blocks: each block
upsamples (deformable 3x3 conv on a bilinear x2 at the two coarsest scales, a transposed conv
elsewhere, or a nearest x2 followed by a 3x3 conv with `upsample="resize"`), switches its activation per pixel from a condition map (InfoACON) and modulates it
with SPADE-style gamma/beta (DySPADE). The condition is [depth, style(3), appearance(1)].
Heads: the sketch (tanh, [-1, 1]) and the reconstructed depth.

`HIDAConfig.official()` reproduces the released checkpoint's module names and shapes, including
the parameters it saves but never uses (`keep_unused`), so `load_official_hida` loads it strictly.
`HIDAConfig.lite()` is the narrow model we train and ship; it skips the unused parameters and
upsamples by resize + conv: a stride-2 transposed conv gives each output pixel parity its own
kernel, which draws a dotted grid on smooth regions (Odena et al., "Deconvolution and Checkerboard
Artifacts", 2016). `adapt_state_dict` turns trained transposed kernels into the closest
resize-conv kernels, so weights trained the old way are a starting point for the new layers (models/upsampling.py,
which also computes the resize-conv at the input's resolution, in its exact transposed-conv form).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .deform_conv import DCN
from .upsampling import ResizeConv, resize_conv_from_transpose

# FS2K "Style k" (k = 1, 2, 3) -> the one-hot channel HIDA's released code sets for it.
STYLE_CHANNEL = {1: 2, 2: 0, 3: 1}


@dataclasses.dataclass(frozen=True)
class HIDAConfig:
    stem: int = 64                                            # channels of down_rgb and of down_par
    down: tuple[int, ...] = (128, 256, 512, 512, 512, 512, 512)  # down2 .. down8
    up: tuple[int, ...] = (512, 512, 512, 512, 256, 128, 64)     # up0 .. up6 outputs
    dcn_blocks: tuple[int, ...] = (0, 1)                      # decoder blocks that upsample with DCN
    dropout: tuple[float, ...] = (0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0)
    spade_hidden: int = 128                                   # width of the (unused) SPADE mlp_shared
    keep_unused: bool = True                                  # build params the checkpoint saves but never uses
    upsample: str = "transpose"                               # "transpose" (HIDA's) or "resize" (no grid texture)
    name: str = "official"

    @staticmethod
    def official() -> "HIDAConfig":
        return HIDAConfig()

    @staticmethod
    def lite() -> "HIDAConfig":
        # 7.84M parameters: 15.7 MB as fp16 safetensors.
        return HIDAConfig(stem=32, down=(64, 128, 160, 160, 128, 128, 128), up=(128, 128, 160, 160, 128, 64, 32),
                          keep_unused=False, upsample="resize", name="lite")

    @staticmethod
    def named(name: str) -> "HIDAConfig":
        if name == "official":
            return HIDAConfig.official()
        if name == "lite":
            return HIDAConfig.lite()
        raise ValueError(f"unknown HIDA config {name!r} (official or lite)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "HIDAConfig":
        # weights exported before `upsample` existed were trained with transposed convs
        d = {"upsample": "transpose", **d}
        return HIDAConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def upsampler(in_ch: int, out_ch: int, mode: str) -> nn.Module:
    if mode == "transpose":
        return nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1)
    if mode == "resize":
        return ResizeConv(in_ch, out_ch)
    raise ValueError(f"unknown upsample mode {mode!r} (transpose or resize)")


def adapt_state_dict(state: dict, model: nn.Module) -> dict:
    """A state dict of a HIDA generator with transposed upsampling, made to fit `model` (resize
    upsampling): `X.weight` (in, out, 4, 4) becomes `X.conv.weight`, biases move with it."""
    want = model.state_dict()
    out = {}
    for k, v in state.items():
        if k in want:
            out[k] = v
            continue
        base, _, leaf = k.rpartition(".")
        new = f"{base}.conv.{leaf}"
        if new in want:
            out[new] = resize_conv_from_transpose(v) if leaf == "weight" and v.dim() == 4 else v
    return out


class MetaAconC(nn.Module):
    """ACON-C with a switching factor from a tiny channel MLP on the global average (model/acon.py).

    bn1/bn2 exist in the official module but its forward never calls them; they are built only to
    load the checkpoint strictly.
    """

    def __init__(self, width: int, r: int = 16, keep_unused: bool = True):
        super().__init__()
        hidden = max(r, width // r)
        self.fc1 = nn.Conv2d(width, hidden, 1, bias=True)
        self.fc2 = nn.Conv2d(hidden, width, 1, bias=True)
        if keep_unused:
            self.bn1 = nn.BatchNorm2d(hidden)
            self.bn2 = nn.BatchNorm2d(width)
        self.p1 = nn.Parameter(torch.randn(1, width, 1, 1))
        self.p2 = nn.Parameter(torch.randn(1, width, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = torch.sigmoid(self.fc2(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        dpx = (self.p1 - self.p2) * x
        return dpx * torch.sigmoid(beta * dpx) + self.p2 * x


class UNetDown(nn.Module):
    """Pre-activation down block: MetaAconC, conv k4 s2, instance norm (absent on the 1x1 bottleneck)."""

    def __init__(self, in_ch: int, out_ch: int, normalize: bool = True, keep_unused: bool = True):
        super().__init__()
        layers = [MetaAconC(in_ch, keep_unused=keep_unused), nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=True)]
        if normalize:
            layers.append(nn.InstanceNorm2d(out_ch, track_running_stats=False))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DySPADE(nn.Module):
    """HIDA's `SPADE_Shoutcut` in 'res2' mode: IN(F)*(1+gamma)+beta+F, gamma/beta from the shared feature.

    mlp_shared and metaAcon are saved in the checkpoint but unused by the forward pass.
    """

    def __init__(self, in_ch: int, out_ch: int, label_nc: int, hidden: int, keep_unused: bool):
        super().__init__()
        if keep_unused:
            self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), MetaAconC(hidden))
            self.metaAcon = MetaAconC(in_ch)
        self.mlp_gamma = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.mlp_beta = nn.Conv2d(out_ch, out_ch, 3, padding=1)

    def forward(self, feat: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(feat, eps=1e-5)
        return normalized * (1 + self.mlp_gamma(shared)) + self.mlp_beta(shared) + feat


class IDABlock(nn.Module):
    """One decoder block (`SPADEUp`): upsample, InfoACON switched by the condition, DySPADE, dropout.

    in_ch = decoder input + skip channels; skip_ch = 0 for the first block (no skip, no appearance map).
    """

    def __init__(self, in_ch: int, out_ch: int, skip_ch: int, use_dcn: bool, dropout: float,
                 hidden: int, keep_unused: bool, upsample: str = "transpose"):
        super().__init__()
        self.use_dcn = use_dcn
        self.has_skip = skip_ch > 0
        if not use_dcn or keep_unused:
            self.layers = upsampler(in_ch, out_ch, upsample)
        if use_dcn or keep_unused:
            self.dcn = DCN(in_ch, out_ch, 3, 1, 1, deformable_groups=2)
        if self.has_skip or keep_unused:
            # Appearance map A: the skip feature collapsed to one channel at the output resolution.
            self.en_conv = upsampler(skip_ch if self.has_skip else in_ch // 2, 1, upsample)
            self.metaAcon_en = MetaAconC(1, keep_unused=keep_unused)
            self.fc1 = nn.Conv2d(5, out_ch, 3, padding=1)     # condition [depth, style(3), A]
        if not self.has_skip or keep_unused:
            self.fc2 = nn.Conv2d(4, out_ch, 3, padding=1)     # condition [depth, style(3)]
        self.metaAcon = MetaAconC(out_ch, keep_unused=keep_unused)
        self.fc3 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.p1 = nn.Parameter(torch.randn(1, out_ch, 1, 1))
        self.p2 = nn.Parameter(torch.randn(1, out_ch, 1, 1))
        self.norm = DySPADE(in_ch, out_ch, 2 if self.has_skip else 1, hidden, keep_unused)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, de: torch.Tensor, en: torch.Tensor | None, depth: torch.Tensor,
                style: torch.Tensor) -> torch.Tensor:
        x = de if en is None else torch.cat([de, en], 1)
        if self.use_dcn:
            y = self.dcn(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        else:
            y = self.layers(x)
        size = y.shape[-1]
        cond = F.interpolate(depth, size=[size, size], mode="nearest")
        cond = torch.cat([cond, style.to(cond.dtype)[:, :, None, None].expand(-1, -1, size, size)], 1)
        if self.has_skip:
            appearance = self.metaAcon_en(self.en_conv(en))
            h = self.fc1(torch.cat([cond, appearance], 1))
        else:
            h = self.fc2(cond)
        shared = self.metaAcon(h)
        theta = torch.sigmoid(self.fc3(shared))
        dpy = (self.p1 - self.p2) * y
        feat = dpy * torch.sigmoid(theta * dpy) + self.p2 * y        # InfoACON
        return self.dropout(self.norm(feat, shared))                   # DySPADE


class HIDAGenerator(nn.Module):
    """`SPADEUNet_YPar`: (photo [-1,1] Bx3xHxW, depth [0,1] Bx1xHxW, style Bx3 in HIDA's channel order)
    -> (sketch [-1,1] Bx1xHxW, reconstructed depth Bx1xHxW). H = W = 256."""

    def __init__(self, config: HIDAConfig | None = None):
        super().__init__()
        cfg = self.config = config or HIDAConfig.official()
        ku = cfg.keep_unused
        if len(cfg.down) != 7 or len(cfg.up) != 7:
            raise ValueError("HIDA has 7 down blocks after the stems and 7 up blocks")
        self.down_rgb = nn.Conv2d(3, cfg.stem, 4, 2, 1)
        self.down_par = nn.Conv2d(1, cfg.stem, 4, 2, 1)
        widths = (2 * cfg.stem,) + tuple(cfg.down)
        for i in range(7):  # down2 .. down8
            setattr(self, f"down{i + 2}", UNetDown(widths[i], widths[i + 1], normalize=i < 6, keep_unused=ku))
        # Skips for up1..up6 are d7, d6, ..., d2.
        skips = [0] + [widths[6 - i] for i in range(6)]
        prev = widths[7]
        for i in range(7):
            in_ch = prev + skips[i]
            setattr(self, f"up{i}", IDABlock(in_ch, cfg.up[i], skips[i], i in cfg.dcn_blocks, cfg.dropout[i],
                                             cfg.spade_hidden, ku, cfg.upsample))
            prev = cfg.up[i]
        head_in = prev + cfg.stem
        self.final_rgb = nn.Sequential(MetaAconC(head_in, keep_unused=ku), upsampler(head_in, 1, cfg.upsample),
                                       nn.Tanh())
        self.final_par = nn.Sequential(MetaAconC(head_in, keep_unused=ku), upsampler(head_in, 1, cfg.upsample))

    def forward(self, photo: torch.Tensor, depth: torch.Tensor, style: torch.Tensor,
                cond_depth: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`depth` feeds the depth stem; `cond_depth` (default: the same) conditions the decoder."""
        cond_depth = depth if cond_depth is None else cond_depth
        d1_rgb = self.down_rgb(photo)
        d1_par = self.down_par(depth)
        feats = [torch.cat([d1_rgb, d1_par], 1)]
        for i in range(2, 9):
            feats.append(getattr(self, f"down{i}")(feats[-1]))
        u = self.up0(feats[7], None, cond_depth, style)
        for i in range(1, 7):
            u = getattr(self, f"up{i}")(u, feats[7 - i], cond_depth, style)
        sketch = self.final_rgb(torch.cat([u, d1_rgb], 1))
        depth_rec = self.final_par(torch.cat([u, d1_par], 1))
        return sketch, depth_rec


def style_vector(style: int | Sequence[float], batch: int = 1, device=None) -> torch.Tensor:
    """FS2K style 1/2/3, or weights (w1, w2, w3) of a convex mix, -> Bx3 in HIDA's one-hot channel order."""
    if isinstance(style, int):
        if style not in STYLE_CHANNEL:
            raise ValueError(f"style must be 1, 2 or 3, got {style}")
        weights = [1.0 if k == style else 0.0 for k in (1, 2, 3)]
    else:
        weights = [float(w) for w in style]
        if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"style mix must be 3 non-negative weights, not all zero, got {style}")
        total = sum(weights)
        weights = [w / total for w in weights]
    channels = [0.0, 0.0, 0.0]
    for k, w in zip((1, 2, 3), weights):
        channels[STYLE_CHANNEL[k]] = w
    return torch.tensor(channels, device=device).expand(batch, 3).clone()


def style_vector_from_labels(labels: torch.Tensor) -> torch.Tensor:
    """FS2K annotation styles 0/1/2 (= Style 1/2/3) -> Bx3 one-hot in HIDA's channel order."""
    channel = torch.tensor([STYLE_CHANNEL[1], STYLE_CHANNEL[2], STYLE_CHANNEL[3]], device=labels.device)
    return F.one_hot(channel[labels.long()], 3).float()


def load_official_hida(path: str, map_location: str = "cpu") -> HIDAGenerator:
    """HIDA's released Lightning checkpoint (`_ckpt_epoch_749.ckpt`) -> an official-config generator.

    Takes the `Generator.`-prefixed entries of `state_dict` and loads them strictly: any missing or
    unexpected key is an error, so a mismatch in the port cannot pass silently.
    """
    from .safe_pickle import torch_load_weights

    # weights_only, with the hyper-parameter classes PL 0.7.5 pickles allowed; never an unrestricted load
    ckpt = torch_load_weights(path, map_location=map_location)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    prefix = "Generator."
    gen_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not gen_state:
        raise ValueError(f"{path}: no 'Generator.' keys in the checkpoint's state_dict")
    model = HIDAGenerator(HIDAConfig.official())
    model.load_state_dict(gen_state, strict=True)
    return model.eval()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
