"""Evaluation of the face model on FS2K's test split (reached as `python -m facesketch.models.eval face ...`).

    python -m facesketch.models.eval face --data PACK [--limit N] [--scoot-limit M] [--weights models/weights/face_lite.safetensors]

Faces are generated from the test split's artist sketches (and from rough sketches made from the test photos
with models.pencil.rough_sketch) at blend 0 (no projection: follow the lines), 0.5 and 1 (full manifold
projection), with the FS2K gender label choosing the feature bank. Measures:
* SSIM (models.metrics, grayscale) between the generated face and the true aligned photo;
* SCOOT between the input sketch and a sketch of the generated face (the `sketch` engine when it is ready,
  else models.pencil.pencil_sketch), i.e. how well the face follows the lines (on M of the evaluated items,
  spread evenly: the sketch engine costs about a second per face on a CPU);
* locality of the blend weights: on the same M items, the mean change of the face when one component's blend
  goes from 0 to 1 (all others 0), inside that component's box and outside it.
`--limit N` takes N items spread evenly over the split (all three styles and both genders stay represented).
Writes docs/results/face.md, face.json, face_grid.png (sketch | shadow | face at blend 0, 0.5, 1 | photo) and
face_components.png (one component's blend moved at a time, with the change it makes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

from .deepfacedrawing import COMPONENTS, load_safetensors
from .export import load_weights
from .hida import style_vector_from_labels
from .paths import REPO, RESULTS_DIR, shown, weights_path
from .projection import FeatureBank, blend, composite_shadow, shadow_components

DEFAULT_WEIGHTS = weights_path("face_lite.safetensors")
BLENDS = (0.0, 0.5, 1.0)
SHOWN_NAMES = {"eye1": "eye1 (left in the image)", "eye2": "eye2 (right in the image)", "nose": "nose",
               "mouth": "mouth", "remainder": "remainder (outline, hair)"}


def _resize(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape[0] == size:
        return a
    return np.asarray(Image.fromarray(a).resize((size, size), Image.BICUBIC))


class Sketcher:
    """Photo -> sketch for SCOOT: the shipped sketch model (style 1) when its weights exist, else the pencil
    filter. The pack's photos are aligned 256 squares, where the sketch engine runs exactly one model pass,
    so running the networks directly here gives the engine's result without importing the backend."""

    def __init__(self):
        self.nets, self.name = None, "pencil filter (models.pencil.pencil_sketch)"
        paths = weights_path("hida_lite.safetensors"), weights_path("depth_lite.safetensors")
        if all(os.path.isfile(q) for q in paths):
            self.nets = load_weights(paths[0], "sketch", "cpu"), load_weights(paths[1], "depth", "cpu")
            self.name = "sketch model (HIDA lite, style 1)"

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.nets is None:
            from .pencil import pencil_sketch
            return pencil_sketch(rgb)
        sketch_net, depth_net = self.nets
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1
        sketch, _ = sketch_net(x, depth_net(x), style_vector_from_labels(torch.tensor([0])))
        return ((sketch[0, 0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


@torch.no_grad()
def generate(model, bank: FeatureBank, sketches: np.ndarray, female: np.ndarray, k: int, blends=BLENDS,
             with_shadow=False):
    """uint8 sketches (N,S,S) -> {blend: uint8 faces (N,S,S,3)}, and shadow darkness (N,S,S) if asked."""
    faces = {b: [] for b in blends}
    shadows = []
    for i in range(len(sketches)):
        x = (torch.from_numpy(sketches[i]).float()[None, None] - 127.5) / 127.5
        z = model.encode(x)
        gender = "female" if female[i] else "male"
        proj = bank.project(z, gender, k)
        for b in blends:
            y = model.generate(blend(z, proj, {c: b for c in COMPONENTS}))
            faces[b].append(((y[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
        if with_shadow:
            shadows.append(composite_shadow(model, shadow_components(model, bank, gender, proj),
                                            haze_quantile=0.5)[0, 0].numpy())
    out = {b: np.stack(v) for b, v in faces.items()}
    return (out, np.stack(shadows)) if with_shadow else out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facesketch.models.eval face", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="FS2K pack directory")
    p.add_argument("--limit", type=int, default=None, help="N test items spread evenly (default: all 1046)")
    p.add_argument("--scoot-limit", type=int, default=60, help="SCOOT and locality on M of the evaluated items, spread evenly")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", default=RESULTS_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--grid-rows", type=int, default=6)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from .data.pack import load_pack
    from .metrics import scoot, ssim
    from .pencil import rough_sketch

    if not os.path.isfile(args.weights):
        raise SystemExit(f"no face weights at {args.weights}; train and export them first (python -m facesketch.models.train face)")
    model, bank_rows, gender_rows, meta = load_safetensors(args.weights)
    bank = FeatureBank.from_labels(bank_rows, gender_rows)
    S = model.cfg.canvas
    t0 = time.time()
    pack = load_pack(args.data, "test")
    n_all = len(pack)
    idx = np.arange(n_all) if not args.limit or args.limit >= n_all else \
        np.unique(np.linspace(0, n_all - 1, args.limit).round().astype(int))
    n = len(idx)
    m = min(n, args.scoot_limit)
    # the subset for SCOOT and locality: spread over the evaluated items too
    scoot_idx = set(np.unique(np.linspace(0, n - 1, m).round().astype(int)).tolist()) if m else set()
    photos = np.stack([_resize(pack.photos[j], S) for j in idx])
    artist = np.stack([_resize(pack.sketches[j], S) for j in idx])
    rough = np.stack([_resize(rough_sketch(pack.photos[j], seed=int(j)), S) for j in idx])
    female = 1 - pack.genders[idx].astype(np.int64)
    sketcher = Sketcher()
    rows = {}
    grid_faces = grid_shadow = None
    for name, sketches in (("artist sketch", artist), ("rough sketch", rough)):
        faces, shadow = generate(model, bank, sketches, female, args.k, with_shadow=True) if name == "artist sketch" \
            else (generate(model, bank, sketches, female, args.k), None)
        if shadow is not None:
            grid_faces, grid_shadow = faces, shadow
        for b in BLENDS:
            ss = [ssim(photos[i], faces[b][i]) for i in range(n)]
            sc = [scoot(sketches[i], sketcher(faces[b][i])) for i in sorted(scoot_idx)]
            rows[(name, b)] = (float(np.mean(ss)), float(np.std(ss)), float(np.mean(sc)), float(np.std(sc)))
            print(f"{name} blend {b}: SSIM {rows[(name, b)][0]:.4f} SCOOT {rows[(name, b)][2]:.4f}", flush=True)
    # references: the true photo's own sketch vs the input (SCOOT ceiling-ish), the mean training photo (SSIM floor)
    ref_scoot = [scoot(artist[i], sketcher(photos[i])) for i in sorted(scoot_idx)]
    local = locality(model, bank, artist[sorted(scoot_idx)], female[sorted(scoot_idx)], args.k)
    train = load_pack(args.data, "train")
    mean_photo = np.stack([_resize(a, S) for a in train.photos]).astype(np.float32).mean(0).round().astype(np.uint8)
    ref_ssim = [ssim(photos[i], mean_photo) for i in range(n)]
    os.makedirs(args.out, exist_ok=True)
    write_grid(os.path.join(args.out, "face_grid.png"), artist, grid_shadow, grid_faces, photos, args.grid_rows,
               model, bank, args.k)
    comp_sketches, comp_female = artist[:1], female[:1]
    rough_path = os.path.join(REPO, "tests", "data", "rough_sketch.png")
    if os.path.isfile(rough_path):
        comp_sketches = np.concatenate([comp_sketches, _resize(np.asarray(Image.open(rough_path).convert("L")), S)[None]])
        comp_female = np.concatenate([comp_female, [1]])
    write_component_grid(os.path.join(args.out, "face_components.png"), comp_sketches, comp_female, model, bank, args.k)
    steps = meta.get("trained_steps", "?")
    lines = [
        "# Face model (DeepFaceDrawing lite) on FS2K test",
        "",
        f"Weights: `{shown(args.weights)}` (config {model.cfg.name}, trained steps {steps}), "
        f"K = {args.k}, {n} of the {n_all} test items{' (spread evenly over the split)' if n < n_all else ''}, "
        f"feature bank chosen by the FS2K gender label. SCOOT and locality on {m} of them (spread evenly).",
        f"SSIM: grayscale SSIM (models.metrics) of the generated face against the true aligned photo, {S}x{S}.",
        f"SCOOT: between the input sketch and a sketch of the generated face made by the {sketcher.name}.",
        "Blend 0 = no projection (follow the lines), 1 = full manifold projection (the most plausible face).",
        "Rough sketches are made from the test photos by models.pencil.rough_sketch.",
        "",
        "| input | blend | SSIM (face vs photo) | SCOOT (input vs sketch of face) |",
        "|---|---|---|---|",
    ]
    for (name, b), (m1, s1, m2, s2) in rows.items():
        lines.append(f"| {name} | {b:.1f} | {m1:.4f} ± {s1:.4f} | {m2:.4f} ± {s2:.4f} |")
    lines += [
        f"| reference: mean training photo | - | {np.mean(ref_ssim):.4f} ± {np.std(ref_ssim):.4f} | - |",
        f"| reference: sketch of the true photo | - | - | {np.mean(ref_scoot):.4f} ± {np.std(ref_scoot):.4f} |",
        "",
        "`face_grid.png`: rows are test items; columns: artist sketch | shadow guide under the sketch | face at blend 0 | "
        "0.5 | 1 | true photo. The last row is `tests/data/rough_sketch.png` (26 strokes drawn with Pillow; no photo).",
        "",
        "Locality of the blend weights: one component's blend from 0 to 1, all others at 0; mean absolute change of the "
        "face (0-255, RGB) inside that component's box and outside it (for the remainder: outside the four boxes and "
        "inside them).",
        "",
        "| component | change inside | change outside | inside / outside |",
        "|---|---|---|---|",
    ] + [f"| {SHOWN_NAMES[c]} | {i:.2f} | {o:.2f} | {i / max(o, 1e-6):.1f} |" for c, (i, o) in local.items()] + [
        "",
        "`face_components.png`: the first test sketch, then `tests/data/rough_sketch.png`; top row: the sketch, "
        "the face at blend 0, then each component's blend at 1 alone; bottom row: the change from blend 0 (x4), "
        "with the component's box.",
        "",
        f"Evaluation took {time.time() - t0:.0f} s on {'cuda' if torch.cuda.is_available() else 'cpu'}"
        f" ({time.strftime('%Y-%m-%d')}).",
    ]
    with open(os.path.join(args.out, "face.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "face.json"), "w") as f:
        json.dump({**{f"{k[0]} blend {k[1]}": v for k, v in rows.items()},
                   **{f"locality {c}": v for c, v in local.items()}}, f, indent=1)
    print("\n".join(lines))
    return 0


def _one_at_a_time(model, bank, sketch: np.ndarray, female: int, k: int) -> dict[str, np.ndarray]:
    """uint8 sketch (S,S) -> {"none": face at blend 0, component: face with only that component at 1} (float RGB)."""
    x = (torch.from_numpy(sketch).float()[None, None] - 127.5) / 127.5
    z = model.encode(x)
    proj = bank.project(z, "female" if female else "male", k)
    out = {}
    for moved in ("none",) + tuple(COMPONENTS):
        y = model.generate(blend(z, proj, {c: float(c == moved) for c in COMPONENTS}))
        out[moved] = ((y[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()
    return out


def _region(model, component: str) -> np.ndarray:
    """Boolean (S,S) mask of a component's box; for the remainder, everything outside the four boxes."""
    S = model.cfg.canvas
    mask = np.zeros((S, S), bool)
    for c in ([component] if component != "remainder" else [c for c in COMPONENTS if c != "remainder"]):
        x, y, n = model.cfg.box(c)
        mask[y:y + n, x:x + n] = True
    return mask if component != "remainder" else ~mask


@torch.no_grad()
def locality(model, bank, sketches: np.ndarray, female: np.ndarray, k: int) -> dict[str, tuple[float, float]]:
    """{component: (mean change inside its region, mean change outside)} over the sketches, 0-255 RGB."""
    sums = {c: [0.0, 0.0] for c in COMPONENTS}
    for i in range(len(sketches)):
        faces = _one_at_a_time(model, bank, sketches[i], int(female[i]), k)
        for c in COMPONENTS:
            d = np.abs(faces[c] - faces["none"]).mean(-1)
            mask = _region(model, c)
            sums[c][0] += float(d[mask].mean()) / len(sketches)
            sums[c][1] += float(d[~mask].mean()) / len(sketches)
    return {c: (v[0], v[1]) for c, v in sums.items()}


@torch.no_grad()
def write_component_grid(path, sketches, female, model, bank, k):
    from PIL import ImageDraw
    tiles = []
    for i in range(len(sketches)):
        faces = _one_at_a_time(model, bank, sketches[i], int(female[i]), k)
        S = sketches.shape[1]
        top = [np.repeat(sketches[i][..., None], 3, 2), faces["none"].round().astype(np.uint8)]
        bottom = [np.full((S, S, 3), 255, np.uint8), np.full((S, S, 3), 255, np.uint8)]
        for c in COMPONENTS:
            top.append(faces[c].round().astype(np.uint8))
            d = np.clip(255 - 4 * np.abs(faces[c] - faces["none"]).mean(-1), 0, 255).astype(np.uint8)
            im = Image.fromarray(np.repeat(d[..., None], 3, 2))
            if c != "remainder":
                x, y, n = model.cfg.box(c)
                ImageDraw.Draw(im).rectangle([x, y, x + n - 1, y + n - 1], outline=(220, 40, 40))
            bottom.append(np.asarray(im))
        tiles += [np.concatenate(top, 1), np.concatenate(bottom, 1)]
    Image.fromarray(np.concatenate(tiles, 0)).save(path, optimize=True)


def write_grid(path, sketches, shadow, faces, photos, n_rows, model, bank, k):
    n_rows = min(n_rows, len(sketches))
    S = sketches.shape[1]

    def rgb(a):
        return np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a

    def under(sk, dark):  # the guide under the user's strokes: sketch x (1 - darkness)
        return (sk.astype(np.float32) * (1 - dark)).round().clip(0, 255).astype(np.uint8)

    rows = []
    for i in range(n_rows):
        rows.append([rgb(sketches[i]), rgb(under(sketches[i], shadow[i]))] + [faces[b][i] for b in BLENDS] + [photos[i]])
    rough_path = os.path.join(REPO, "tests", "data", "rough_sketch.png")
    if os.path.isfile(rough_path):
        rough = _resize(np.asarray(Image.open(rough_path).convert("L")), S)
        f, sh = generate(model, bank, rough[None], np.array([1]), k, with_shadow=True)
        rows.append([rgb(rough), rgb(under(rough, sh[0]))] + [f[b][0] for b in BLENDS] + [np.full((S, S, 3), 255, np.uint8)])
    Image.fromarray(np.concatenate([np.concatenate(r, 1) for r in rows], 0)).save(path, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
