"""models/upsampling.py computes the resize-conv (nearest x2, then a 3x3 conv) at the input's resolution: the same
output and the same gradients as the upsample-then-convolve it stands for, in both spellings the models use."""
import pytest
import torch
import torch.nn.functional as F

from facesketch.models.upsampling import NearestUpConv, ResizeConv, resize_conv


def _by_definition(x, weight, bias):
    return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)


@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 3, 1, 1), (1, 4, 16, 16)])
def test_resize_conv_equals_nearest_x2_then_conv_with_the_same_gradients(shape):
    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=True)
    w = torch.randn(6, shape[1], 3, 3, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    g = torch.randn(shape[0], 6, 2 * shape[2], 2 * shape[3])
    grads = []
    for f in (_by_definition, resize_conv):
        y = f(x, w, b)
        assert y.shape == (shape[0], 6, 2 * shape[2], 2 * shape[3])
        grads.append((y, *torch.autograd.grad((y * g).sum(), (x, w, b))))
    for a, c in zip(*grads):
        assert torch.allclose(a, c, atol=1e-4), (a - c).abs().max()


def test_both_modules_keep_their_checkpoint_names_and_compute_the_resize_conv():
    torch.manual_seed(1)
    rc, seq = ResizeConv(8, 4), NearestUpConv(8, 4)
    assert set(rc.state_dict()) == {"conv.weight", "conv.bias"}
    assert set(seq.state_dict()) == {"1.weight", "1.bias"}   # as nn.Sequential(Upsample, Conv2d) saved them
    x = torch.randn(2, 8, 10, 6)
    with torch.no_grad():
        assert torch.allclose(rc(x), _by_definition(x, rc.conv.weight, rc.conv.bias), atol=1e-5)
        assert torch.allclose(seq(x), _by_definition(x, seq[1].weight, seq[1].bias), atol=1e-5)
