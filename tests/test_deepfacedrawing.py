"""DeepFaceDrawing port: official weight layout, loader, assembly, both configs' shapes, lite size budget."""
import dataclasses
import os
import pickle

import numpy as np
import pytest
import torch

from facesketch.models.deepfacedrawing import (COMPONENTS, DeepFaceDrawing, JitBatchNorm2d, get_config, load_official_deepfacedrawing,
                                    load_safetensors, lite_config, official_config, save_safetensors)
from facesketch.models.paths import SHIPPED_WEIGHTS_DIR
from facesketch.models.projection import knn

torch.set_num_threads(1)


# ---------------------------------------------------------------- the official layout, written from the notes' tables

def _bn(prefix, c):
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,), f"{prefix}.running_var": (c,)}


def _res(prefix, c, norm):
    d = {f"{prefix}.conv_block.1.weight": (c, c, 3, 3), f"{prefix}.conv_block.1.bias": (c,),
         f"{prefix}.conv_block.5.weight": (c, c, 3, 3), f"{prefix}.conv_block.5.bias": (c,)}
    for i in (2, 6):
        d.update(norm(f"{prefix}.conv_block.{i}", c))
    return d


def _affine(prefix, c):  # Jittor InstanceNorm2d: weight and bias only
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def encoder_layout(S, widths=(32, 64, 128, 256, 512), latent=512):
    d, cin = {}, 1
    for i, w in enumerate(widths):
        d[f"conv.{2 * i}.conv.weight"] = (w, cin, 4, 4)
        d[f"conv.{2 * i}.conv.bias"] = (w,)
        d.update(_bn(f"conv.{2 * i}.bn", w))
        d.update(_res(f"conv.{2 * i + 1}", w, _bn))
        cin = w
    g = S // 2 ** len(widths)
    d["fc_mu.0.weight"] = (latent, widths[-1] * g * g)
    d["fc_mu.0.bias"] = (latent,)
    return d


def decoder_layout(S, widths, out_nc, latent=512):
    """Image decoder: widths (512,256,128,64,32,32), out 1; FM decoder: (512,256,256,128,64,64), out 32."""
    g = S // 2 ** (len(widths) - 1)
    d = {"fc.0.weight": (widths[0] * g * g, latent), "fc.0.bias": (widths[0] * g * g,)}
    idx = 0
    for cin, cout in zip(widths[:-1], widths[1:]):
        d.update(_res(f"conv.{idx}", cin, _bn))
        d[f"conv.{idx + 1}.conv.0.weight"] = (cin, cout, 4, 4)   # ConvTranspose: (in, out, kh, kw)
        d[f"conv.{idx + 1}.conv.0.bias"] = (cout,)
        d.update(_bn(f"conv.{idx + 1}.conv.1", cout))
        idx += 2
    d.update(_res(f"conv.{idx}", widths[-1], _bn))
    d[f"conv.{idx + 2}.weight"] = (out_nc, widths[-1], 5, 5)       # idx+1 is the ReflectionPad2d
    d[f"conv.{idx + 2}.bias"] = (out_nc,)
    return d


def generator_layout(input_nc=32, ngf=56, n_down=4, n_blocks=9):
    d = {"model.1.weight": (ngf, input_nc, 7, 7), "model.1.bias": (ngf,)}
    d.update(_affine("model.2", ngf))
    i, c = 4, ngf
    for _ in range(n_down):
        d[f"model.{i}.weight"] = (2 * c, c, 3, 3)
        d[f"model.{i}.bias"] = (2 * c,)
        d.update(_affine(f"model.{i + 1}", 2 * c))
        i, c = i + 3, 2 * c
    for _ in range(n_blocks):
        d.update(_res(f"model.{i}", c, _affine))
        i += 1
    for _ in range(n_down):
        d[f"model.{i}.weight"] = (c, c // 2, 3, 3)
        d[f"model.{i}.bias"] = (c // 2,)
        d.update(_affine(f"model.{i + 1}", c // 2))
        i, c = i + 3, c // 2
    d[f"model.{i + 1}.weight"] = (3, ngf, 7, 7)
    d[f"model.{i + 1}.bias"] = (3,)
    return d


OFFICIAL_SIZES = {"eye1": 128, "eye2": 128, "nose": 160, "mouth": 192, "": 512}


def official_file_layout(enc=(32, 64, 128, 256, 512), img=(512, 256, 128, 64, 32, 32),
                         fm=(512, 256, 256, 128, 64, 64), latent=512, fc=32, ngf=56, n_down=4, n_blocks=9):
    files = {}
    for key, S in OFFICIAL_SIZES.items():
        files[f"AE_whole/latest_net_encoder_{key}.pkl"] = encoder_layout(S, enc, latent)
        files[f"AE_whole/latest_net_decoder_{key}_image.pkl"] = decoder_layout(S, img, 1, latent)
        files[f"Combine/latest_net_DE_{key}.pkl"] = decoder_layout(S, fm, fc, latent)
    files["Combine/latest_net_G.pkl"] = generator_layout(fc, ngf, n_down, n_blocks)
    return files


def _model_files(model):
    """The model's state grouped back into official files (names relative to each file)."""
    prefix = {"encoders": "AE_whole/latest_net_encoder_{}.pkl", "image_decoders": "AE_whole/latest_net_decoder_{}_image.pkl",
              "feature_decoders": "Combine/latest_net_DE_{}.pkl"}
    out = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.startswith("generator."):
            out.setdefault("Combine/latest_net_G.pkl", {})[name[len("generator."):]] = tuple(t.shape)
            continue
        group, comp, rest = name.split(".", 2)
        key = "" if comp == "remainder" else comp
        out.setdefault(prefix[group].format(key), {})[rest] = tuple(t.shape)
    return out


def test_official_config_matches_released_layout_exactly():
    with torch.device("meta"):  # 560M parameters: shapes only, no memory
        model = DeepFaceDrawing(official_config())
    assert _model_files(model) == official_file_layout()


# A reduced "official" config: same canvas, boxes, depth and structure, tiny widths, so real files can be written.
TINY = dict(enc=(2, 2, 3, 2, 4), img=(4, 3, 2, 2, 2, 2), fm=(4, 3, 2, 2, 2, 3), latent=8, fc=3, ngf=2, n_down=4, n_blocks=2)


def tiny_official_config():
    return dataclasses.replace(official_config(), name="official-tiny", latent=TINY["latent"], enc_widths=TINY["enc"],
                               img_dec_widths=TINY["img"], fm_widths=TINY["fm"], feature_channels=TINY["fc"],
                               ngf=TINY["ngf"], g_downsample=TINY["n_down"], g_blocks=TINY["n_blocks"])


def write_official_files(root, layout, rows=(7, 5), latent=8, seed=0):
    rng = np.random.default_rng(seed)
    written = {}
    for rel, tensors in layout.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        arrays = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in tensors.items()}
        for name in arrays:
            if name.endswith("running_var"):
                arrays[name] = np.abs(arrays[name]) + 0.5
        with open(path, "wb") as f:
            pickle.dump(arrays, f, pickle.HIGHEST_PROTOCOL)
        written[rel] = arrays
    banks = {}
    for prefix, n in zip(("man", "female"), rows):
        for key in OFFICIAL_SIZES:
            data = rng.standard_normal((n, latent)).astype(np.float32)
            data.tofile(os.path.join(root, "AE_whole", f"{prefix}_{key}_feature.bin"))
            banks[(prefix, key)] = data
    return written, banks


def test_official_loader_every_tensor_lands(tmp_path):
    layout = official_file_layout(**TINY)
    written, banks = write_official_files(str(tmp_path), layout)
    report = {}
    model, loaded_banks = load_official_deepfacedrawing(str(tmp_path), tiny_official_config(), report=report)
    assert report["tensors"] == sum(len(v) for v in written.values())
    assert report["files"] == len(written) + 10
    state = model.state_dict()
    back = {"encoder": "encoders", "decoder": "image_decoders", "DE": "feature_decoders"}
    for rel, arrays in written.items():
        base = os.path.basename(rel)[len("latest_net_"):-len(".pkl")]
        if base == "G":
            prefix = "generator"
        else:
            kind, key = base.split("_", 1)
            key = key[:-len("_image")] if key.endswith("_image") else key
            prefix = f"{back[kind]}.{key or 'remainder'}"
        for name, arr in arrays.items():
            np.testing.assert_array_equal(state[f"{prefix}.{name}"].numpy(), arr)
    for (prefix, key), data in banks.items():
        gender = "male" if prefix == "man" else "female"
        np.testing.assert_array_equal(loaded_banks[gender][key or "remainder"], data)
    assert loaded_banks["male"]["eye1"].shape == (7, 8) and loaded_banks["female"]["nose"].shape == (5, 8)
    # The loaded model runs: 512 canvas in, 512 RGB out.
    with torch.no_grad():
        y = model(torch.ones(1, 1, 512, 512))
    assert y.shape == (1, 3, 512, 512) and torch.isfinite(y).all()
    # the FM decoders normalise per call by default (official demo); running statistics on request
    bns = [m for m in model.feature_decoders.modules() if isinstance(m, JitBatchNorm2d)]
    assert bns and all(m.stats == "sample" for m in bns)
    assert all(m.stats == "running" for m in model.encoders.modules() if isinstance(m, JitBatchNorm2d))
    with torch.no_grad():
        y2 = model.set_feature_norm("running")(torch.ones(1, 1, 512, 512))
    assert all(m.stats == "running" for m in bns) and not torch.allclose(y, y2)


def test_official_loader_rejects_leftover_and_missing_tensors(tmp_path):
    layout = official_file_layout(**TINY)
    extra = {k: dict(v) for k, v in layout.items()}
    extra["Combine/latest_net_G.pkl"]["model.99.weight"] = (3,)
    write_official_files(str(tmp_path / "extra"), extra)
    with pytest.raises(ValueError, match="no place"):
        load_official_deepfacedrawing(str(tmp_path / "extra"), tiny_official_config())
    missing = {k: dict(v) for k, v in layout.items()}
    del missing["AE_whole/latest_net_encoder_nose.pkl"]["conv.3.conv_block.2.running_mean"]
    write_official_files(str(tmp_path / "missing"), missing)
    with pytest.raises(ValueError, match="unset"):
        load_official_deepfacedrawing(str(tmp_path / "missing"), tiny_official_config())


def test_official_boxes_paste_order_and_nose_trim():
    model = DeepFaceDrawing(tiny_official_config())
    maps = {c: torch.full((1, 3, *(2 * [model.cfg.box(c)[2]])), float(i + 1)) for i, c in enumerate(COMPONENTS)}
    out = model.assemble(maps)[0, 0]
    val = {c: float(i + 1) for i, c in enumerate(COMPONENTS)}
    assert out[0, 0] == val["remainder"]
    assert out[160, 110] == val["eye1"] and out[160, 380] == val["eye2"]
    assert out[240, 250] == val["nose"]            # nose below the eyes
    assert out[240, 235] == val["eye1"] and out[240, 236] == val["nose"]   # eye1 (cols 108..235) over the nose
    assert out[240, 255] == val["eye2"] and out[240, 254] == val["nose"]
    assert out[320, 250] == val["nose"]            # nose overwrites the top of the mouth box (rows 301..355)
    assert out[355, 250] == val["nose"] and out[356, 250] == val["mouth"]   # nose[:-36] ends at row 355
    assert out[492, 360] == val["mouth"] and out[493, 250] == val["remainder"]


def test_remainder_is_whitened_on_a_copy():
    model = DeepFaceDrawing(lite_config())
    sketch = -torch.ones(1, 1, 256, 256)
    crops = model.crop_components(sketch)
    assert (sketch == -1).all()
    rem = crops["remainder"][0, 0]
    for c in ("eye1", "eye2", "nose", "mouth"):
        x, y, n = model.cfg.box(c)
        assert crops[c].shape == (1, 1, n, n)
        assert (rem[y:y + n, x:x + n] == 1).all()
    assert rem[0, 0] == -1 and rem[255, 255] == -1


def test_sample_statistics_batchnorm_is_per_face_and_leaves_buffers():
    bn = JitBatchNorm2d(4, stats="sample")
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    a, b = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8) * 3 + 2
    ya = bn(a)
    assert torch.allclose(bn(torch.cat([a, b]))[:1], ya, atol=1e-5)   # independent of the other faces
    mean, var = a.mean((0, 2, 3)), a.var((0, 2, 3), unbiased=False)
    ref = (a - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-5)
    ref = ref * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    assert torch.allclose(ya, ref, atol=1e-5)
    assert (bn.running_mean == 0).all() and (bn.running_var == 1).all()
    bn.stats = "running"
    assert torch.allclose(bn(a), a * bn.weight[None, :, None, None] / (1 + 1e-5) ** 0.5 + bn.bias[None, :, None, None], atol=1e-5)


def test_lite_forward_shapes():
    model = DeepFaceDrawing(lite_config()).eval()
    sketch = torch.rand(2, 1, 256, 256) * 2 - 1
    with torch.no_grad():
        z = model.encode(sketch)
        assert all(z[c].shape == (2, 256) for c in COMPONENTS)
        imgs = model.decode_images(z)
        maps = model.feature_maps(z)
        for c in COMPONENTS:
            n = model.cfg.box(c)[2]
            assert imgs[c].shape == (2, 1, n, n)
            assert maps[c].shape == (2, 16, n, n)
        y = model.generate(z)
    assert y.shape == (2, 3, 256, 256) and y.abs().max() <= 1


def test_lite2_weights_with_a_quantized_feature_bank_fit_16mb(tmp_path):
    model = DeepFaceDrawing(get_config("lite2"))
    n, d = 3103, model.cfg.latent  # the lite2 export's bank: one sketch per training photo with a gender
    rng = np.random.default_rng(0)
    bank = {c: rng.standard_normal((n, d)).astype(np.float32) * rng.uniform(0.1, 3, d).astype(np.float32)
            for c in COMPONENTS}
    path = str(tmp_path / "face_lite.safetensors")
    save_safetensors(model, path, bank, np.zeros(n, np.uint8))
    assert os.path.getsize(path) < 16_000_000
    loaded, bank2, gender, meta = load_safetensors(path)
    assert meta["config"] == "lite2" and bank2["nose"].shape == (n, d) and gender.shape == (n,)
    for c in COMPONENTS:
        step = np.abs(bank[c]).max(0) / 127
        assert np.all(np.abs(bank2[c].numpy() - bank[c]) <= step * 0.5 + 1e-3 * step + 1e-6)
    # the neighbours manifold projection finds are those of the unquantized bank
    q = torch.as_tensor(bank["nose"][:200]) + 0.3 * torch.randn(200, d)
    _, exact = knn(torch.as_tensor(bank["nose"]), q, 10)
    _, quant = knn(bank2["nose"], q, 10)
    agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.tolist(), quant.tolist())])
    assert agree > 0.97
    shipped = os.path.join(SHIPPED_WEIGHTS_DIR, "face_lite.safetensors")
    if os.path.exists(shipped):
        assert os.path.getsize(shipped) < 40 * 1024 * 1024


def test_large_weights_are_stored_as_int8_per_output_channel(tmp_path):
    from facesketch.models.deepfacedrawing import INT8_MIN_NUMEL, WEIGHT_SCALE
    from safetensors import safe_open
    model = DeepFaceDrawing(lite_config())
    with torch.no_grad():
        for p in model.parameters():   # channels of very different sizes, as trained weights have
            p.copy_(torch.randn_like(p) * torch.rand(p.shape[:1] + (1,) * (p.dim() - 1)) * 3)
    path = str(tmp_path / "face.safetensors")
    save_safetensors(model, path)
    with safe_open(path, "pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    loaded = load_safetensors(path)[0].state_dict()
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        if k.endswith(".weight") and v.dim() >= 2 and v.numel() >= INT8_MIN_NUMEL:
            assert stored[k].dtype == torch.int8 and stored[WEIGHT_SCALE + k].dtype == torch.float32
            step = v.abs().flatten(1).amax(1) / 127
            err = (loaded[k] - v).abs().flatten(1).amax(1)
            assert torch.all(err <= step * 0.5 * 1.0001 + 1e-12), k    # half a step of its own channel
        else:   # biases, norms and small layers keep fp16
            assert stored[k].dtype == torch.float16 and torch.equal(loaded[k], v.half().float()), k
    # about half the bytes of an all-fp16 file
    save_safetensors(model, str(tmp_path / "fp16.safetensors"), int8_weights=False)
    assert os.path.getsize(path) < 0.55 * os.path.getsize(tmp_path / "fp16.safetensors")
