"""The resize-conv's fast form (models/upsampling.py) computes the same function: module by module, in the shipped
sketch generator, and in the lite2 face generator."""
import copy

import pytest
import torch
import torch.nn as nn

from facesketch.models.upsampling import ResizeConv, fuse_resize_convs, transpose_from_resize_conv


@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 3, 1, 1), (1, 4, 16, 16)])
def test_transposed_form_equals_nearest_x2_then_conv(shape):
    torch.manual_seed(0)
    rc = ResizeConv(shape[1], 6)
    x = torch.randn(shape)
    up = transpose_from_resize_conv(rc.conv)
    assert isinstance(up, nn.ConvTranspose2d)
    assert torch.allclose(rc(x), up(x), atol=1e-5)


def test_fuse_replaces_both_spellings_and_nothing_else():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), ResizeConv(8, 8),
                        nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(8, 4, 3, 1, 1)),
                        nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(4, 4, 3, 1, 1)),
                        nn.Conv2d(4, 1, 3, 1, 1)).eval()
    fused = fuse_resize_convs(copy.deepcopy(net))
    assert isinstance(fused[1], nn.ConvTranspose2d) and isinstance(fused[2], nn.ConvTranspose2d)
    assert isinstance(fused[3][0], nn.Upsample) and fused[3][0].mode == "bilinear"   # not a nearest resize: kept
    x = torch.randn(2, 3, 11, 13)
    with torch.no_grad():
        assert torch.allclose(net(x), fused(x), atol=1e-5)


def test_a_padded_or_strided_conv_is_not_taken_for_a_resize_conv():
    with pytest.raises(ValueError):
        transpose_from_resize_conv(nn.Conv2d(3, 3, 3, 1, 1, padding_mode="reflect"))
    with pytest.raises(ValueError):
        transpose_from_resize_conv(nn.Conv2d(3, 3, 5, 1, 2))


def test_shipped_sketch_generator_draws_the_same_when_fused():
    from facesketch.models.export import load_weights
    from facesketch.models.paths import weights_path
    g = load_weights(weights_path("hida_lite.safetensors"), "sketch")
    if g.config.upsample != "resize":
        pytest.skip("the shipped sketch weights upsample by transposed convs: nothing to fuse")
    f = fuse_resize_convs(copy.deepcopy(g))
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in f.modules()) > 0
    torch.manual_seed(2)
    photo, depth = torch.rand(1, 3, 256, 256) * 2 - 1, torch.rand(1, 1, 256, 256) * 2 - 1
    style = torch.tensor([[0.0, 0.0, 1.0]])
    with torch.no_grad():
        a, b = g(photo, depth, style)[0], f(photo, depth, style)[0]
    assert (a - b).abs().max() < 1e-4


def test_lite2_face_generator_is_the_same_when_fused():
    from facesketch.models.deepfacedrawing import GlobalGenerator, lite2_config
    cfg = lite2_config()
    assert cfg.g_upsample == "resize"
    torch.manual_seed(3)
    g = GlobalGenerator(cfg.feature_channels, 3, 8, cfg.g_downsample, 1, upsample=cfg.g_upsample).eval()
    f = fuse_resize_convs(copy.deepcopy(g))
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in f.modules()) == cfg.g_downsample
    x = torch.randn(1, cfg.feature_channels, 64, 64)
    with torch.no_grad():
        assert torch.allclose(g(x), f(x), atol=1e-4)
