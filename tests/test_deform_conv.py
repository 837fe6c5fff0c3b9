"""The vectorised deformable convolution against a naive per-pixel loop written from the DCNv2 rules."""
import math

import torch
import torch.nn.functional as F

from facesketch.models.deform_conv import DCN, deform_conv2d


def _bilinear_zero_outside(img, y, x):
    """DCNv2's sampling: zero outside (-1, H) x (-1, W); each corner outside the image counts as zero."""
    h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    total = 0.0
    for yy, xx, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                        (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        if 0 <= yy < h and 0 <= xx < w:
            total += wgt * float(img[yy, xx])
    return total


def _naive(x, offset, weight, bias, mask, stride=1, pad=1):
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    k = kh * kw
    groups = offset.shape[1] // (2 * k)
    cg = c // groups
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (w + 2 * pad - kw) // stride + 1
    out = torch.zeros(b, o, ho, wo, dtype=torch.float64)
    for bi in range(b):
        for i in range(ho):
            for j in range(wo):
                # sampled[c, k] for this output pixel
                sampled = torch.zeros(c, k, dtype=torch.float64)
                for ci in range(c):
                    g = ci // cg
                    for ki in range(kh):
                        for kj in range(kw):
                            kk = ki * kw + kj
                            dy = float(offset[bi, g * 2 * k + 2 * kk, i, j])
                            dx = float(offset[bi, g * 2 * k + 2 * kk + 1, i, j])
                            m = float(mask[bi, g * k + kk, i, j])
                            y = i * stride - pad + ki + dy
                            xx = j * stride - pad + kj + dx
                            sampled[ci, kk] = m * _bilinear_zero_outside(x[bi, ci], y, xx)
                out[bi, :, i, j] = weight.double().view(o, c * k) @ sampled.view(c * k) + bias.double()
    return out


def test_matches_naive_loop_with_offsets_groups_and_batch():
    g = torch.Generator().manual_seed(0)
    b, c, h, w, o, groups = 2, 4, 5, 6, 3, 2
    x = torch.randn(b, c, h, w, generator=g)
    weight = torch.randn(o, c, 3, 3, generator=g)
    bias = torch.randn(o, generator=g)
    # Large fractional offsets: many samples land between pixels and some fall off the image.
    offset = torch.randn(b, 2 * groups * 9, h, w, generator=g) * 2.5
    offset[0, 0, 0, 0] = -3.7   # far above the top edge: zero
    offset[1, 1, 2, 2] = 7.3    # far right: zero
    offset[0, 2, 1, 1] = -1.5   # partly outside: only some corners count
    mask = torch.rand(b, groups * 9, h, w, generator=g)
    got = deform_conv2d(x, offset, weight, bias, stride=1, padding=1, mask=mask)
    want = _naive(x, offset, weight, bias, mask)
    assert got.shape == want.shape == (b, o, h, w)
    assert torch.allclose(got.double(), want, atol=1e-4), (got.double() - want).abs().max()
    # The offsets really mattered: a plain convolution gives something else.
    assert not torch.allclose(got, F.conv2d(x, weight, bias, padding=1), atol=1e-2)


def test_groups_use_their_own_offsets():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 4, 4, generator=g)
    weight = torch.randn(2, 4, 3, 3, generator=g)
    offset = torch.zeros(1, 36, 4, 4)
    offset[:, 18:] = 0.5  # shift only group 1
    mask = torch.ones(1, 18, 4, 4)
    got = deform_conv2d(x, offset, weight, None, mask=mask)
    want = _naive(x, offset, weight, torch.zeros(2), mask)
    assert torch.allclose(got.double(), want, atol=1e-4)


def test_stride_two():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 6, 6, generator=g)
    weight = torch.randn(3, 2, 3, 3, generator=g)
    bias = torch.randn(3, generator=g)
    offset = torch.randn(1, 18, 3, 3, generator=g)
    mask = torch.rand(1, 9, 3, 3, generator=g)
    got = deform_conv2d(x, offset, weight, bias, stride=2, padding=1, mask=mask)
    want = _naive(x, offset, weight, bias, mask, stride=2)
    assert torch.allclose(got.double(), want, atol=1e-4)


def test_zero_offset_unit_mask_is_plain_conv():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 7, 5, generator=g)
    weight = torch.randn(4, 6, 3, 3, generator=g)
    bias = torch.randn(4, generator=g)
    got = deform_conv2d(x, torch.zeros(2, 36, 7, 5), weight, bias, mask=torch.ones(2, 18, 7, 5))
    assert torch.allclose(got, F.conv2d(x, weight, bias, padding=1), atol=1e-5)


def test_dcn_module_layout_and_offset_split():
    torch.manual_seed(4)
    dcn = DCN(4, 3, deformable_groups=2)
    assert dcn.weight.shape == (3, 4, 3, 3) and dcn.bias.shape == (3,)
    assert dcn.conv_offset_mask.weight.shape == (54, 4, 3, 3)
    x = torch.randn(1, 4, 5, 5)
    # Freshly initialised: zero offsets and mask sigmoid(0) = 0.5.
    assert torch.allclose(dcn(x), 0.5 * F.conv2d(x, dcn.weight, None, padding=1) + dcn.bias.view(1, -1, 1, 1),
                          atol=1e-5)
    with torch.no_grad():
        dcn.conv_offset_mask.weight.normal_(0, 0.3)
        dcn.conv_offset_mask.bias.normal_(0, 0.3)
    o = dcn.conv_offset_mask(x)
    want = _naive(x, o[:, :36].detach(), dcn.weight.detach(), dcn.bias.detach(), torch.sigmoid(o[:, 36:]).detach())
    assert torch.allclose(dcn(x).double(), want, atol=1e-4)


def test_gradients_flow_to_offsets():
    dcn = DCN(2, 2)
    with torch.no_grad():
        dcn.conv_offset_mask.bias.fill_(0.3)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    dcn(x).square().sum().backward()
    assert x.grad.abs().sum() > 0
    assert dcn.conv_offset_mask.weight.grad.abs().sum() > 0
