"""Training pieces that run in a blink: losses, augmentation, fp16 export round trip."""
import dataclasses

import numpy as np
import torch

from facesketch.models.depth_net import DepthNet
from facesketch.models.export import load_weights, read_metadata, save_fp16
from facesketch.models.hida import HIDAConfig, HIDAGenerator, style_vector
from facesketch.models.train import Batches, d_hinge, gradient_direction_loss


def test_gradient_direction_loss():
    a = torch.rand(1, 1, 16, 16)
    assert gradient_direction_loss(a, a).item() < 1e-4
    # Opposite gradients everywhere -> cos = -1 -> loss 2 where there is any gradient.
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    assert gradient_direction_loss(ramp, -ramp).item() > 1.5
    # Channel sum: a 3-channel copy of the same image has the same direction.
    assert gradient_direction_loss(a.repeat(1, 3, 1, 1), a).item() < 1e-4


def test_d_hinge_with_hida_mean_gap_penalty():
    # hinge: relu(1 - 1.5) + relu(1 + -0.5) = 0.5; penalty: 2 * 0.5 * ((-0.5 - 1.5)^2)^2 = 16
    assert abs(d_hinge(torch.full((4,), 1.5), torch.full((4,), -0.5)).item() - 16.5) < 1e-5
    assert abs(d_hinge(torch.zeros(4), torch.zeros(4)).item() - 2.0) < 1e-6


class _Pack:
    """The fields of models.data.pack.FS2KPack that Batches reads."""

    def __init__(self, n=3, size=64):
        rng = np.random.default_rng(0)
        self.photos = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        self.sketches = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        self.depths = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        self.styles = np.arange(n, dtype=np.uint8) % 3

    def __len__(self):
        return len(self.photos)


def test_batches_shapes_and_ranges():
    pack = _Pack()
    photo, sketch, depth, style, parts = Batches(pack, 2, "cpu").sample()
    assert photo.shape == (2, 3, 64, 64) and sketch.shape == depth.shape == parts.shape == (2, 1, 64, 64)
    assert (parts == 0).all()  # no part maps given
    assert photo.min() >= -1 and photo.max() <= 1 and depth.min() >= 0 and depth.max() <= 1
    assert style.dtype == torch.int64
    # Without augmentation a fixed index returns the stored image exactly.
    p, _, d, _, _ = Batches(pack, 1, "cpu", augment=False).sample(np.array([1]))
    assert torch.allclose((p[0].permute(1, 2, 0) + 1) * 127.5, torch.from_numpy(pack.photos[1]).float(), atol=1e-3)
    assert torch.allclose(d[0, 0] * 255, torch.from_numpy(pack.depths[1]).float(), atol=1e-3)


def test_fp16_export_round_trip(tmp_path):
    torch.manual_seed(0)
    model = DepthNet().eval()
    path = str(tmp_path / "depth.safetensors")
    save_fp16(model, "depth", path, {"step": 7})
    assert read_metadata(path)["step"] == "7"
    loaded = load_weights(path, "depth")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x), atol=2e-2)


def test_lite_hida_export_size(tmp_path):
    model = HIDAGenerator(HIDAConfig.lite())
    path = tmp_path / "hida.safetensors"
    save_fp16(model, "sketch", str(path))
    assert path.stat().st_size < 16_000_000
    assert load_weights(str(path), "sketch").config == HIDAConfig.lite()


def test_zoom_out_puts_the_face_in_a_wider_frame():
    pack = _Pack(2, 64)
    pack.depths[:] = 200
    parts = np.full((2, 64, 64), 255, np.uint8)
    photo, sketch, depth, _, weight = Batches(pack, 2, "cpu", zoom_out=1.0, parts=parts).sample()
    for d, s, w_map in zip(depth[:, 0], sketch[:, 0], weight[:, 0]):
        face = d > 0.5
        rows, cols = face.any(1).nonzero().flatten(), face.any(0).nonzero().flatten()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 0.25 * 64 <= h <= 0.95 * 64 and h == w            # a shrunk square face ...
        assert face.sum() == h * w and (d[~face] == 0).all()    # ... and no depth around it
        assert (s[~face] == 1).all()                            # blank paper around it
        assert (w_map[~face] == 0).all() and w_map[face].mean() > 0.9  # part weights moved with the face


def test_photometric_jitter_changes_only_the_photo():
    pack = _Pack(4, 32)
    a = Batches(pack, 4, "cpu", seed=3, photometric=False).sample()
    b = Batches(pack, 4, "cpu", seed=3, photometric=True).sample()
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])   # same geometry, sketch and depth
    assert not torch.allclose(a[0], b[0]) and b[0].min() >= -1 and b[0].max() <= 1


def test_transposed_upsampling_converts_to_resize_conv():
    """A transposed kernel that a resize-conv can express converts exactly; the shipped weights (trained
    with transposed convs) convert to a model whose sketch stays close to theirs."""
    import torch.nn.functional as F
    from facesketch.models.hida import adapt_state_dict
    from facesketch.models.upsampling import resize_conv_from_transpose
    from facesketch.models.paths import weights_path
    w = torch.ones(2, 3, 4, 4)  # out[2m] = in[m-1] + in[m], out[2m+1] = in[m] + in[m+1]: c = (1, 0, 1) per axis
    x = torch.rand(1, 2, 12, 12)
    a = F.conv_transpose2d(x, w, stride=2, padding=1)
    b = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), resize_conv_from_transpose(w), padding=1)
    assert torch.allclose(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1], atol=1e-4)

    old = load_weights(weights_path("hida_lite.safetensors"), "sketch")
    if old.config.upsample != "transpose":
        return  # the shipped weights are already resize-conv ones: nothing to convert
    new = HIDAGenerator(dataclasses.replace(old.config, upsample="resize")).eval()
    new.load_state_dict(adapt_state_dict(old.state_dict(), new), strict=True)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 256), torch.linspace(-1, 1, 256), indexing="ij")
    photo = torch.stack([0.6 * xx, 0.4 * yy, 0.5 * xx * yy])[None]  # smooth, face-free
    depth = torch.zeros(1, 1, 256, 256)
    with torch.no_grad():
        s_old, s_new = old(photo, depth, style_vector(1))[0], new(photo, depth, style_vector(1))[0]
    assert (s_old - s_new).abs().mean() < 0.25
