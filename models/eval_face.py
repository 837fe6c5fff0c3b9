"""Evaluation of the face model on FS2K's test split (reached as `python -m facesketch.models.eval face ...`).

    python -m facesketch.models.eval face --data FACEPACK [--limit N] [--old-weights OLD.safetensors] [--scoot-limit M]

FACEPACK is models.data.face_pack's output with its `test` split (FS2K test photos with their artist sketches and the
sketches made from them; CelebA test photos with made sketches for the grid). Faces are generated from every kind of
input sketch at blend 0 (no projection: follow the lines), 0.5 and 1 (full manifold projection), with the photo's
gender choosing the feature bank (FS2K's label; CelebA's from models.data.face_gender). With --old-weights the
previous weights run on the same items in the same run, side by side. Measures:
* SSIM (models.metrics, grayscale) between the generated face and the true aligned photo: over the whole frame,
  and inside the head oval (face_template.head_mask; the new model draws a plain background outside it, and
  align=auto composites only the oval into the user's layer). The reference row is the mean training photo;
* SCOOT between the input sketch and a sketch of the generated face (the sketch model, style 1) on M items;
* Frechet distance on the HED VGG16's pooled conv5_3 features between the generated faces (artist sketches, blend
  0.5) and the real test photos, all on the plain background outside the head oval; its floor is real training
  photos against the same test photos;
* CPU latency per face (encode, project, generate), both weights interleaved on the same sketches;
* locality of the blend weights (one component's blend 0 -> 1, the change inside and outside its box).
Writes docs/results/face.md, face.json, face_grid.png (FS2K test: sketch | shadow | faces at blend 0, 0.5, 1 |
previous weights | photo), face_wild.png (CelebA test photos' made sketches and hand-drawn rough sketches) and
face_components.png.
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
KIND_NAMES = {"artist": "artist sketch", "dodge": "colour dodge", "pencil": "pencil filter", "rough": "rough strokes",
              "outline": "pen outline", "hed": "HED edges", "engine": "sketch engine"}
HAND_DRAWN = ("rough_sketch.png",)  # tests/data drawings without a photo


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
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1  # a copy: rgb may be a read-only map
        sketch, _ = sketch_net(x, depth_net(x), style_vector_from_labels(torch.tensor([0])))
        return ((sketch[0, 0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


class FaceModel:
    """Weights, their feature bank and a name, for generating faces side by side."""

    def __init__(self, path: str, name: str):
        self.model, bank_rows, gender_rows, self.meta = load_safetensors(path)
        self.bank = FeatureBank.from_labels(bank_rows, gender_rows)
        self.path, self.name, self.S = path, name, self.model.cfg.canvas


@torch.no_grad()
def generate(model, bank: FeatureBank, sketches: np.ndarray, female: np.ndarray, k: int, blends=BLENDS,
             with_shadow=False):
    """uint8 sketches (N,S,S) -> {blend: uint8 faces (N,S,S,3)}, and shadow darkness (N,S,S) if asked."""
    faces = {b: [] for b in blends}
    shadows = []
    S = model.cfg.canvas
    for i in range(len(sketches)):
        x = (torch.from_numpy(np.array(_resize(sketches[i], S))).float()[None, None] - 127.5) / 127.5
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


def on_plain(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N,S,S,3) faces or photos on the training's plain background outside the head oval."""
    from .data.face_template import head_mask
    from .train_face import BACKGROUND
    m = head_mask(rgb.shape[1])[None, ..., None]
    return (rgb * m + (BACKGROUND + 1) * 127.5 * (1 - m)).round().astype(np.uint8)


def vgg_features(vgg, rgb: np.ndarray, batch: int = 16) -> np.ndarray:
    out = []
    for i in range(0, len(rgb), batch):
        x = torch.from_numpy(np.ascontiguousarray(rgb[i:i + batch])).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            out.append(vgg.pooled_features(x).numpy())
    return np.concatenate(out)


@torch.no_grad()
def latency(models: list, sketches: np.ndarray, female: np.ndarray, k: int, rounds: int = 3) -> dict[str, float]:
    """Median seconds per face (encode, project, generate at blend 0.5) per model, interleaved on the same sketches."""
    times = {m.name: [] for m in models}
    for _ in range(rounds):
        for m in models:
            for i in range(len(sketches)):
                t = time.perf_counter()
                generate(m.model, m.bank, sketches[i:i + 1], female[i:i + 1], k, blends=(0.5,))
                times[m.name].append(time.perf_counter() - t)
    return {name: float(np.median(v)) for name, v in times.items()}


def _items(pack, dataset: str, limit: int | None) -> np.ndarray:
    from .data.made_sketches import spread_evenly
    rows = np.array([i for i, it in enumerate(pack.items) if it["dataset"] == dataset], np.int64)
    return rows[spread_evenly(len(rows), limit)]


def inputs_by_kind(pack, photo_rows: np.ndarray, kinds=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{input name: (photo rows, sketch rows)}; the sketch engine's kind split by the style each photo was drawn in.
    `kinds`: only those of the pack's kinds (None: all)."""
    from .data.made_sketches import engine_style
    where = {(int(p), int(k)): r for r, (p, k) in enumerate(pack.sketch_of)}
    out = {}
    unknown = set(kinds or ()) - set(pack.kinds)
    if unknown:
        raise SystemExit(f"the face pack has no sketches of kind {', '.join(sorted(unknown))} "
                         f"(it has {', '.join(pack.kinds)})")
    for ki, kind in enumerate(pack.kinds):
        if kinds is not None and kind not in kinds:
            continue
        have = [(p, where[(int(p), ki)]) for p in photo_rows if (int(p), ki) in where]
        if not have:
            continue
        if kind == "engine":
            for style in (1, 2, 3):
                sel = [(p, r) for p, r in have if engine_style(pack.items[p]["id"]) == style]
                if sel:
                    out[f"sketch engine style {style}"] = tuple(np.array(v) for v in zip(*sel))
        else:
            out[KIND_NAMES.get(kind, kind)] = tuple(np.array(v) for v in zip(*have))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facesketch.models.eval face", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="face pack directory (models.data.face_pack, with its test split)")
    p.add_argument("--limit", type=int, default=None, help="N FS2K test items spread evenly (default: all 1046)")
    p.add_argument("--scoot-limit", type=int, default=60, help="SCOOT and locality on M of the evaluated items")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS)
    p.add_argument("--old-weights", default=None, help="previous face weights, measured side by side")
    p.add_argument("--blends", default="0,0.5,1", help="blends for the made sketches (artist sketches: all three)")
    p.add_argument("--kinds", default=None, help="only these sketch kinds of the pack, comma-separated (artist, dodge, "
                   "pencil, rough, outline, engine, hed; default: all): a quicker check of a campaign's progress")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", default=RESULTS_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--grid-rows", type=int, default=6)
    p.add_argument("--vgg", default=None, help="converted HED VGG16 (default: python -m facesketch.models.vgg16_hed's cache)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from .data.face_pack import load_face_pack
    from .data.face_template import head_mask
    from .metrics import masked_ssim, scoot, ssim
    from .vgg16_hed import VGG16HED, frechet_distance

    for w in filter(None, (args.weights, args.old_weights)):
        if not os.path.isfile(w):
            raise SystemExit(f"no face weights at {w}; train and export them first (python -m facesketch.models.train face)")
    models = [FaceModel(args.weights, "new")] + ([FaceModel(args.old_weights, "previous")] if args.old_weights else [])
    new = models[0]
    S = new.S
    t0 = time.time()
    test = load_face_pack(args.data, "test")
    if test.photos.shape[1] != S:
        raise SystemExit(f"the face pack is {test.photos.shape[1]}px, the model {S}px")
    rows = _items(test, "fs2k", args.limit)
    n, n_all = len(rows), len(_items(test, "fs2k", None))
    female_all = test.genders
    made_blends = tuple(float(b) for b in args.blends.split(","))
    inputs = inputs_by_kind(test, rows, args.kinds.split(",") if args.kinds else None)
    if "artist sketch" not in inputs:
        raise SystemExit(f"{args.data}/test has no artist sketches (build it from the landmarks index with FS2K test)")
    oval = head_mask(S) > 0.5
    photos_all = np.asarray(test.photos)
    sketcher = Sketcher()
    m = min(n, args.scoot_limit)
    scoot_rows = set(rows[np.unique(np.linspace(0, n - 1, m).round().astype(int))].tolist()) if m else set()
    results, grid_faces = {}, {}
    for name, (p_rows, s_rows) in inputs.items():
        sketches = np.asarray(test.sketches[s_rows])
        blends = BLENDS if name == "artist sketch" else made_blends
        for fm in models:
            faces = generate(fm.model, fm.bank, sketches, female_all[p_rows], args.k, blends)
            if name == "artist sketch":
                grid_faces[fm.name] = faces
            for b in blends:
                f = faces[b]
                ss = [ssim(photos_all[pr], f[i]) for i, pr in enumerate(p_rows)]
                so = [masked_ssim(photos_all[pr], f[i], oval) for i, pr in enumerate(p_rows)]
                sc = [scoot(sketches[i], sketcher(f[i])) for i, pr in enumerate(p_rows) if int(pr) in scoot_rows]
                results[(fm.name, name, b)] = {"n": len(p_rows), "ssim": float(np.mean(ss)), "ssim_oval": float(np.mean(so)),
                                               "scoot": float(np.mean(sc)) if sc else None}
                r = results[(fm.name, name, b)]
                print(f"{fm.name}: {name} blend {b}: SSIM {r['ssim']:.4f} oval {r['ssim_oval']:.4f} "
                      f"SCOOT {r['scoot'] if r['scoot'] is None else round(r['scoot'], 4)} ({len(p_rows)})", flush=True)
    # references: the mean training photo (what a blurry average scores) and the true photo's own sketch (SCOOT)
    train = load_face_pack(args.data, "train")
    mean_photo = np.asarray(train.photos[::3], np.float32).mean(0).round().astype(np.uint8)
    art_rows = inputs["artist sketch"][0]
    ref = {"ssim": float(np.mean([ssim(photos_all[pr], mean_photo) for pr in art_rows])),
           "ssim_oval": float(np.mean([masked_ssim(photos_all[pr], mean_photo, oval) for pr in art_rows])),
           "scoot": float(np.mean([scoot(np.asarray(test.sketches[sr]), sketcher(photos_all[pr]))
                                   for pr, sr in zip(*inputs["artist sketch"]) if int(pr) in scoot_rows]))}
    # Frechet VGG distance, everything on the plain background outside the head oval
    vgg = VGG16HED.from_file(args.vgg)
    real = vgg_features(vgg, on_plain(photos_all[art_rows]))
    fd = {fm.name: frechet_distance(vgg_features(vgg, on_plain(grid_faces[fm.name][0.5])), real) for fm in models}
    train_rows = np.linspace(0, len(train.photos) - 1, min(len(train.photos), max(len(art_rows), 600))).astype(int)
    fd["real training photos (floor)"] = frechet_distance(vgg_features(vgg, on_plain(np.asarray(train.photos[train_rows]))), real)
    lat_rows = inputs["artist sketch"]
    lat = latency(models, np.asarray(test.sketches[lat_rows[1][:10]]), female_all[lat_rows[0][:10]], args.k)
    m_scoot = sorted(int(np.flatnonzero(art_rows == r)[0]) for r in scoot_rows if r in set(art_rows.tolist()))
    art_sketches = np.asarray(test.sketches[inputs["artist sketch"][1]])
    local = locality(new.model, new.bank, art_sketches[m_scoot], female_all[art_rows][m_scoot], args.k)
    os.makedirs(args.out, exist_ok=True)
    write_grid(os.path.join(args.out, "face_grid.png"), art_sketches, photos_all[art_rows], female_all[art_rows],
               models, args.grid_rows, args.k)
    write_wild_grid(os.path.join(args.out, "face_wild.png"), test, models, args.k)
    comp_sketches, comp_female = art_sketches[:1], female_all[art_rows][:1]
    rough_path = os.path.join(REPO, "tests", "data", "rough_sketch.png")
    if os.path.isfile(rough_path):
        comp_sketches = np.concatenate([comp_sketches, _resize(np.asarray(Image.open(rough_path).convert("L")), S)[None]])
        comp_female = np.concatenate([comp_female, [1]])
    write_component_grid(os.path.join(args.out, "face_components.png"), comp_sketches, comp_female, new.model,
                         new.bank, args.k)
    write_report(args, models, results, ref, fd, lat, local, n, n_all, m, sketcher.name, time.time() - t0)
    return 0


def write_report(args, models, results, ref, fd, lat, local, n, n_all, m, sketcher_name, seconds) -> None:
    names = [fm.name for fm in models]
    lines = ["# Face model (DeepFaceDrawing) on FS2K test", ""]
    for fm in models:
        lines.append(f"* **{fm.name}**: `{shown(fm.path)}` (config {fm.model.cfg.name}, trained steps "
                     f"{fm.meta.get('trained_steps', '?')}, feature bank {sum(fm.bank.size(g) for g in fm.bank.genders())} rows; {fm.meta.get('data', '')})")
    lines += [
        "",
        f"Command: `python -m facesketch.models.eval face --data FACEPACK{f' --limit {args.limit}' if args.limit else ''}"
        f"{' --old-weights OLD' if args.old_weights else ''}`. {n} of the {n_all} FS2K test photos"
        f"{' (spread evenly over the split)' if n < n_all else ''}; K = {args.k}; the photo's gender label chooses the "
        f"feature bank. SCOOT and locality on {m} of them (spread evenly), against a sketch of the face made by the "
        f"{sketcher_name}.",
        "SSIM: grayscale SSIM of the generated face against the true aligned photo over the whole 256x256 frame, and "
        "inside the head oval (`face_template.head_mask`). Blend 0 = follow the lines, 1 = full manifold projection.",
        "",
        "| input | blend | " + " | ".join(f"{x} SSIM / oval / SCOOT" for x in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for (name, b) in dict.fromkeys((k[1], k[2]) for k in results):
        cells = []
        for x in names:
            r = results.get((x, name, b))
            cells.append("-" if r is None else f"{r['ssim']:.4f} / {r['ssim_oval']:.4f} / "
                         + ("-" if r["scoot"] is None else f"{r['scoot']:.4f}"))
        lines.append(f"| {name} ({results[(names[0], name, b)]['n']}) | {b:.1f} | " + " | ".join(cells) + " |")
    lines += [
        f"| reference: mean training photo | - | {ref['ssim']:.4f} / {ref['ssim_oval']:.4f} / - |" + " |" * (len(names) - 1),
        f"| reference: sketch of the true photo | - | - / - / {ref['scoot']:.4f} |" + " |" * (len(names) - 1),
        "",
        "Frechet distance on HED-VGG16 pooled conv5_3 features to the real test photos (faces from the artist "
        "sketches at blend 0.5; every image on the plain background outside the head oval; lower is better):",
        "",
        "| faces | Frechet VGG distance |",
        "|---|---|",
    ] + [f"| {k} | {v:.1f} |" for k, v in fd.items()] + [
        "",
        "CPU latency per face (encode, project, generate; median, " + f"{torch.get_num_threads()} threads, interleaved): "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in lat.items()) + ".",
        "",
        "`face_grid.png`: FS2K test rows: artist sketch | shadow guide | new face at blend 0 | 0.5 | 1 | "
        + ("previous weights at 0.5 | " if len(names) > 1 else "") + "true photo. `face_wild.png`: CelebA test photos' "
        "made sketches and hand-drawn rough sketches: sketch | new | " + ("previous | " if len(names) > 1 else "")
        + "photo (blend 0.5).",
        "",
        "Locality of the blend weights (new weights): one component's blend from 0 to 1, all others at 0; mean "
        "absolute change of the face (0-255, RGB) inside that component's box and outside it.",
        "",
        "| component | change inside | change outside | inside / outside |",
        "|---|---|---|---|",
    ] + [f"| {SHOWN_NAMES[c]} | {i:.2f} | {o:.2f} | {i / max(o, 1e-6):.1f} |" for c, (i, o) in local.items()] + [
        "",
        f"Evaluation took {seconds:.0f} s on {'cuda' if torch.cuda.is_available() else 'cpu'} ({time.strftime('%Y-%m-%d')}).",
    ]
    with open(os.path.join(args.out, "face.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "face.json"), "w") as f:
        json.dump({"results": [{"weights": k[0], "input": k[1], "blend": k[2], **v} for k, v in results.items()],
                   "reference": ref, "frechet_vgg": fd, "latency_s": lat,
                   "locality": {c: v for c, v in local.items()}}, f, indent=1)
    print("\n".join(lines))


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


def _rgb(a):
    return np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a


def write_grid(path, sketches, photos, female, models, n_rows, k):
    """FS2K test rows: sketch | shadow guide | new faces at each blend | previous weights at 0.5 | photo."""
    new = models[0]
    idx = np.linspace(0, len(sketches) - 1, min(n_rows, len(sketches))).astype(int)

    def under(sk, dark):  # the guide under the user's strokes: sketch x (1 - darkness)
        return (sk.astype(np.float32) * (1 - dark)).round().clip(0, 255).astype(np.uint8)

    rows = []
    for i in idx:
        f, sh = generate(new.model, new.bank, sketches[i:i + 1], female[i:i + 1], k, with_shadow=True)
        row = [_rgb(sketches[i]), _rgb(under(sketches[i], sh[0]))] + [f[b][0] for b in BLENDS]
        row += [generate(fm.model, fm.bank, sketches[i:i + 1], female[i:i + 1], k, (0.5,))[0.5][0] for fm in models[1:]]
        rows.append(row + [photos[i]])
    Image.fromarray(np.concatenate([np.concatenate(r, 1) for r in rows], 0)).save(path, optimize=True)


def write_wild_grid(path, test, models, k, per_kind: int = 1):
    """Faces beyond FS2K: CelebA test photos' made sketches (one per kind) and the hand-drawn test drawings."""
    S = models[0].S
    rows = []
    celeb = _items(test, "celeba", None)
    if len(celeb):
        for name, (p_rows, s_rows) in inputs_by_kind(test, celeb).items():
            for j in np.linspace(0, len(p_rows) - 1, per_kind).astype(int):
                sk, pr = np.asarray(test.sketches[s_rows[j]]), p_rows[j]
                g = test.genders[pr:pr + 1].clip(0, 1)
                rows.append([_rgb(sk)] + [generate(fm.model, fm.bank, sk[None], g, k, (0.5,))[0.5][0] for fm in models]
                            + [np.asarray(test.photos[pr])])
    for name in HAND_DRAWN:
        p = os.path.join(REPO, "tests", "data", name)
        if os.path.isfile(p):
            sk = _resize(np.asarray(Image.open(p).convert("L")), S)
            rows.append([_rgb(sk)] + [generate(fm.model, fm.bank, sk[None], np.array([1]), k, (0.5,))[0.5][0]
                                      for fm in models] + [np.full((S, S, 3), 255, np.uint8)])
    if rows:
        Image.fromarray(np.concatenate([np.concatenate(r, 1) for r in rows], 0)).save(path, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
