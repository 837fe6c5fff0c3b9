"""Evaluation of the sketch face locator and of `align=auto` (reached as `python -m facesketch.models.eval locator`).

    python -m facesketch.models.eval locator [--landmarks DIR] [--limit N] [--face-limit M] [--weights W]

Test data: FS2K's test-split artist sketches, each put through a random similarity transform into a white
512x512 canvas: the face (2.3 inter-ocular distances, cheek to cheek) is `scale` 0.3-1.0 of the canvas width,
rotated by up to +-20 degrees, its centre anywhere in the middle 60 % of the canvas (fixed seed per item).
Negatives: held-out random drawings with no face (scribbles, shapes, text, hatching: models.data.locator_samples
with another seed) and pencil, dodge and rough sketches of scikit-image's cat and coffee photos (when
~/.cache/facesketch/skimage-data has them), at random crops.
Measures:
* detection rate: a face found within half an inter-ocular distance of the true face centre;
* landmark error: mean distance of the five landmarks to the truth over the true inter-ocular distance; the truth
  is the photo's landmarks, and also the sketch's own (models.data.sketch_register: the artists drew a little off
  their photos) where the index has them;
* false-alarm rate: negatives where a face is reported;
* face SSIM after alignment (the face engine, blend 0.5): `align=auto` on the transformed sketch, warped back
  into the untransformed frame, against `align=template` on the untransformed sketch, both against the
  true photo, inside the face oval that align=auto composites (its fully opaque part, on the template);
* locator time on a 2048x2048 layer (the downscaled copy included), on this CPU.
Writes docs/results/face_locator.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

from . import locator as L
from .data.face_template import alignment_matrix, warp
from .data.fs2k import load_sketch_gray
from .data.made_sketches import spread_evenly
from .data.landmarks import key_points, read_index
from .paths import RESULTS_DIR, cache_dir, shown, weights_path

CANVAS = 512
FACE_WIDTH_IOD = 2.3


def transform_for(rng, pts: np.ndarray, scale_range=(0.3, 1.0), rot=20.0, canvas=CANVAS) -> np.ndarray:
    iod = float(np.hypot(*(pts[1] - pts[0])))
    frac = rng.uniform(*scale_range)
    s = frac * canvas / (FACE_WIDTH_IOD * iod)
    a = math.radians(rng.uniform(-rot, rot))
    target = rng.uniform(0.2, 0.8, 2) * canvas
    m = np.array([[s * math.cos(a), -s * math.sin(a), 0.0], [s * math.sin(a), s * math.cos(a), 0.0]])
    m[:, 2] = target - m[:, :2] @ pts.mean(0)
    return m


def matched_face(faces, truth: np.ndarray, iod: float):
    """The first found face whose centre is within half an eye distance of the true face's (None: a miss)."""
    return next((f for f in faces if np.linalg.norm(L.face_centre(f.points) - truth.mean(0)) < 0.5 * iod), None)


def systematic_shift(loc, items: list, root: str, seed: int, sketch_of=None) -> dict:
    """How the found alignment differs from the true one, on average, in the template frame: the mean of
    (predicted alignment) o (true alignment)^-1 over the items, each through its seeded transform.
    `sketch_of(item)` gives the grey sketch (default: the FS2K artist's). Returns the mean map and, per case,
    what the landmark error needs to compare against a truth moved by another split's mean map."""
    maps, cases = [], []
    for i, it in enumerate(items):
        pts = np.array(it["points"], np.float64)
        sketch = sketch_of(it) if sketch_of else np.asarray(load_sketch_gray(os.path.join(root, it["sketch"])))
        m = transform_for(np.random.default_rng(seed + i), pts)
        truth = L.apply(m, pts)
        iod = float(np.hypot(*(truth[1] - truth[0])))
        faces = loc.find(L.ink_from_gray(warp(sketch, m, CANVAS, fill=255).astype(np.float32) / 255.0))
        hit = matched_face(faces, truth, iod)
        if hit is None:
            continue
        mt = np.vstack([alignment_matrix(key_points(truth), 256), [0, 0, 1]])
        mp = np.vstack([alignment_matrix(key_points(hit.points), 256), [0, 0, 1]])
        maps.append(mp @ np.linalg.inv(mt))
        cases.append((truth, hit.points, mt, iod))
    a = np.mean(maps, 0)
    centre = np.einsum("nij,j->ni", np.array(maps)[:, :2], [128.0, 128.0, 1.0]) - 128.0
    return {"n": len(maps), "map": a[:2].round(4).tolist(), "scale": round(float(np.sqrt(np.linalg.det(a[:2, :2]))), 4),
            "shift_px_at_256": centre.mean(0).round(2).tolist(), "shift_sd_px": centre.std(0).round(2).tolist(),
            "_cases": cases, "_map": a}


def error_against_moved_truth(cases, mean_map) -> tuple[float, float]:
    """Mean landmark error / IOD against the truth, and against the truth moved by `mean_map` (template frame)."""
    e0, e1 = [], []
    for truth, pred, mt, iod in cases:
        c = np.linalg.inv(mt) @ mean_map @ mt       # the same systematic move, in this layer's pixels
        moved = truth @ c[:2, :2].T + c[:2, 2]
        e0.append(np.linalg.norm(pred - truth, axis=1).mean() / iod)
        e1.append(np.linalg.norm(pred - moved, axis=1).mean() / iod)
    return float(np.mean(e0)), float(np.mean(e1))


def negatives(n: int, seed: int):
    from .data.locator_samples import negative
    rng = np.random.default_rng(seed)
    out = [("drawing", 1.0 - negative(rng)) for _ in range(n)]
    sk = cache_dir("skimage-data")
    from .pencil import dodge_sketch, pencil_sketch, rough_sketch
    for name in ("chelsea.png", "coffee.png"):
        p = os.path.join(sk, name)
        if not os.path.isfile(p):
            continue
        rgb = np.asarray(Image.open(p).convert("RGB"))
        for kind, sketch in (("dodge", dodge_sketch(rgb)), ("pencil", pencil_sketch(rgb)), ("rough", rough_sketch(rgb))):
            h, w = sketch.shape
            for k in range(8):
                side = int(rng.uniform(0.5, 1.0) * min(h, w))
                x, y = int(rng.uniform(0, w - side)), int(rng.uniform(0, h - side))
                crop = sketch[y:y + side, x:x + side] if k else sketch
                out.append((f"{name.split('.')[0]} {kind}", crop.astype(np.float32) / 255.0))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facesketch.models.eval locator", description=__doc__.split("\n\n")[0])
    ap.add_argument("--landmarks", default=cache_dir("landmarks"))
    ap.add_argument("--fs2k", help="FS2K folder, when not where the landmarks were made")
    ap.add_argument("--weights", default=weights_path("locator.safetensors"))
    ap.add_argument("--limit", type=int, default=None, help="N test sketches spread evenly (default all 1046)")
    ap.add_argument("--negatives", type=int, default=500)
    ap.add_argument("--face-limit", type=int, default=200, help="face SSIM on M of the sketches (0: skip)")
    ap.add_argument("--face-kind", default="artist", choices=("artist", "dodge"),
                    help="face SSIM on the artists' sketches, or on colour-dodge sketches of the same photos (which sit "
                         "exactly on their photos: the artists' drawings are a little off theirs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", default=os.path.join(RESULTS_DIR, "face_locator.json"))
    ap.add_argument("--threshold", type=float, default=None, help="face score threshold (default: the weights')")
    ap.add_argument("--made", default="dodge,rough", help="also measure landmarks on these sketches made from the "
                    "test photos (exact landmarks: the photo's own), comma-separated models.pencil kinds; '' for none")
    ap.add_argument("--made-limit", type=int, default=300, help="made sketches on M of the test photos")
    ap.add_argument("--systematic", type=int, default=0, metavar="N",
                    help="also measure the average (systematic) misalignment on N train and N test artist sketches "
                         "and N test colour-dodge sketches, and the test error once the train average is removed")
    ap.add_argument("--calibrate", action="store_true",
                    help="also report detection and false alarms at other thresholds (scores kept from a low bar)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    loc = L.load(args.weights)
    if args.threshold is not None:
        loc.threshold = args.threshold
    chosen = loc.threshold
    if args.calibrate:
        loc.threshold = 0.05
    index = read_index(args.landmarks, {"fs2k": args.fs2k})
    items = [it for it in index["items"] if it["dataset"] == "fs2k" and it["split"] == "test" and it["points"]]
    if args.limit and args.limit < len(items):
        items = [items[i] for i in spread_evenly(len(items), args.limit)]
    root = index["roots"]["fs2k"]
    t0 = time.time()

    # -- detection and landmarks --------------------------------------------------------------------------
    found, errors, scores, per_scale = 0, [], [], {}
    drawn_errors = []      # against the sketch's own landmarks (models.data.sketch_register), where registered
    cases = []
    for i, it in enumerate(items):
        rng = np.random.default_rng(args.seed + i)
        pts = np.array(it["points"], np.float64)
        sketch = np.asarray(load_sketch_gray(os.path.join(root, it["sketch"])))
        m = transform_for(rng, pts)
        layer = warp(sketch, m, CANVAS, fill=255)
        truth = L.apply(m, pts)
        faces = loc.find(L.ink_from_gray(layer.astype(np.float32) / 255.0))
        iod = float(np.hypot(*(truth[1] - truth[0])))
        hit = matched_face(faces, truth, iod)
        frac = FACE_WIDTH_IOD * iod / CANVAS
        bucket = f"{min(0.9, math.floor(frac * 10) / 10):.1f}"
        d = per_scale.setdefault(bucket, [0, 0, []])
        d[1] += 1
        if hit is not None:
            found += 1
            d[0] += 1
            e = float(np.linalg.norm(hit.points - truth, axis=1).mean() / iod)
            errors.append(e)
            if it.get("sketch_points"):
                own = L.apply(m, np.array(it["sketch_points"], np.float64))
                drawn_errors.append(float(np.linalg.norm(hit.points - own, axis=1).mean() / iod))
            d[2].append(e)
            scores.append(hit.score)
        cases.append((it, sketch, m, hit))
    n = len(items)

    neg = negatives(args.negatives, args.seed + 999)
    false, neg_scores = {}, []
    for kind, gray in neg:
        f = false.setdefault(kind, [0, 0])
        faces = loc.find(L.ink_from_gray(gray))
        neg_scores.append(max((x.score for x in faces), default=0.0))
        f[1] += 1
        f[0] += neg_scores[-1] >= chosen
    fa_total = sum(v[0] for v in false.values()) / max(1, sum(v[1] for v in false.values()))
    calibration = None
    if args.calibrate:  # a hit counts at threshold t when its score reaches t (the relative rule aside); the
        # per-width table stays at the low bar
        pos, negs = np.array(scores), np.array(neg_scores)
        calibration = {f"{t:.2f}": {"detection": round(float((pos >= t).sum() / max(n, 1)), 4),
                                    "false_alarms": round(float((negs >= t).mean()), 4)}
                       for t in np.arange(0.2, 0.81, 0.05)}
        found = int((pos >= chosen).sum())
        keep = pos >= chosen
        errors = [e for e, k in zip(errors, keep) if k]
        loc.threshold = chosen

    # -- landmarks on sketches made from the test photos (their labels are exact) -------------------------
    made = {}
    kinds = [k for k in args.made.split(",") if k]
    if kinds:
        from .pencil import dodge_sketch, pencil_sketch, rough_sketch
        makers = {"dodge": dodge_sketch, "pencil": pencil_sketch, "rough": rough_sketch}
        step = max(1, len(items) // max(1, args.made_limit))
        for i, it in list(enumerate(items))[::step][:args.made_limit]:
            pts = np.array(it["points"], np.float64)
            m = transform_for(np.random.default_rng(args.seed + i), pts)   # the artist sketch's transform
            truth = L.apply(m, pts)
            iod = float(np.hypot(*(truth[1] - truth[0])))
            with Image.open(os.path.join(root, it["photo"])) as im:
                photo = np.asarray(im.convert("RGB"))
            for k in kinds:
                layer = warp(makers[k](photo), m, CANVAS, fill=255)
                faces = loc.find(L.ink_from_gray(layer.astype(np.float32) / 255.0))
                d = made.setdefault(k, [0, 0, []])
                d[1] += 1
                hit = matched_face(faces, truth, iod)
                if hit is not None:
                    d[0] += 1
                    d[2].append(float(np.linalg.norm(hit.points - truth, axis=1).mean() / iod))

    # -- the systematic part of the misalignment ------------------------------------------------------------
    systematic = None
    if args.systematic:
        from .pencil import dodge_sketch

        def spread(split):
            its = [it for it in index["items"] if it["dataset"] == "fs2k" and it["split"] == split and it["points"]]
            return [its[i] for i in spread_evenly(len(its), args.systematic)]

        def dodge_of(it):
            with Image.open(os.path.join(root, it["photo"])) as im:
                return dodge_sketch(np.asarray(im.convert("RGB")))
        tr = systematic_shift(loc, spread("train"), root, args.seed + 5000)
        te = systematic_shift(loc, spread("test"), root, args.seed)
        dg = systematic_shift(loc, spread("test"), root, args.seed, dodge_of)
        before, after = error_against_moved_truth(te["_cases"], np.linalg.inv(tr["_map"]))
        systematic = {"train artist": tr, "test artist": te, "test colour dodge": dg,
                      "test artist error_iod": round(before, 4),
                      "test artist error_iod, train's mean misalignment removed from the truth": round(after, 4)}
        for v in (tr, te, dg):
            del v["_cases"], v["_map"]

    # -- speed at 2048^2 ----------------------------------------------------------------------------------
    from facesketch.backend.engines.face_placement import downscaled
    it, sketch, m, _ = cases[0]
    big = warp(sketch, np.array([[4.0, 0, 0], [0, 4.0, 0]]) @ np.vstack([m, [0, 0, 1]]), 2048, fill=255)
    big_f = big.astype(np.float32) / 255.0
    times = []
    for _ in range(12):
        t = time.perf_counter()
        small, s = downscaled(big_f)
        loc.find(L.ink_from_gray(small))
        times.append(time.perf_counter() - t)
    locate_ms = float(np.median(times[2:]) * 1000)

    # -- face SSIM after alignment ------------------------------------------------------------------------
    face = None
    if args.face_limit:
        face = face_ssim(cases[:: max(1, len(cases) // args.face_limit)][:args.face_limit], root, args.weights,
                         args.face_kind)

    det_rate = found / max(n, 1)
    res = {"sketches": n, "detected": found, "detection_rate": round(det_rate, 4), "calibration": calibration,
           "landmark_error_iod": {"mean": round(float(np.mean(errors)), 4) if errors else None,
                                  "median": round(float(np.median(errors)), 4) if errors else None,
                                  "p95": round(float(np.percentile(errors, 95)), 4) if errors else None},
           "landmark_error_iod_drawn": {"n": len(drawn_errors),
                                        "mean": round(float(np.mean(drawn_errors)), 4) if drawn_errors else None,
                                        "median": round(float(np.median(drawn_errors)), 4) if drawn_errors else None},
           "by_face_width": {k: {"n": v[1], "detected": round(v[0] / v[1], 4),
                                 "error_iod": round(float(np.mean(v[2])), 4) if v[2] else None}
                             for k, v in sorted(per_scale.items())},
           "made_sketches": {k: {"n": v[1], "detected": round(v[0] / max(1, v[1]), 4),
                                 "error_iod": round(float(np.mean(v[2])), 4) if v[2] else None}
                             for k, v in made.items()},
           "false_alarms": {"rate": round(fa_total, 4), **{k: f"{v[0]}/{v[1]}" for k, v in false.items()}},
           "locate_2048_ms": round(locate_ms, 1), "threshold": loc.threshold, "weights": shown(args.weights),
           "face_ssim": face, "systematic": systematic, "seconds": round(time.time() - t0, 1),
           "protocol": {"canvas": CANVAS, "face_width_of_canvas": [0.3, 1.0], "rotation_deg": 20, "seed": args.seed}}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1)
    md = os.path.splitext(args.out)[0] + ".md"
    with open(md, "w") as fh:
        fh.write(markdown(res, " ".join(["python -m facesketch.models.eval locator"] + (argv or sys.argv[1:]))))
    print(json.dumps(res, indent=1))
    print(f"wrote {args.out} and {md}")
    return 0


def markdown(r: dict, command: str) -> str:
    e = r["landmark_error_iod"]
    lines = ["# Sketch face locator and align=auto on transformed FS2K test sketches", "",
             f"Command: `{command}` ({r['seconds']:.0f} s on this CPU). Weights `{r['weights']}`, face score "
             f"threshold {r['threshold']}.", "",
             "Each test sketch is scaled so that the face (2.3 inter-ocular distances wide) is 0.3-1.0 of a white "
             "512x512 canvas, rotated by up to 20 degrees and placed anywhere in the middle 60 % (fixed seed).", "",
             "| measure | value |", "|---|---|",
             f"| sketches | {r['sketches']} |",
             f"| detection rate | {r['detection_rate'] * 100:.1f} % |",
             f"| landmark error / inter-ocular distance | mean {e['mean'] * 100:.1f} %, median {e['median'] * 100:.1f} %, "
             f"95th percentile {e['p95'] * 100:.1f} % |" if e["mean"] is not None else "| landmark error | - |",
             *([f"| landmark error / IOD against the sketch's own landmarks (registered onto its photo, "
                f"{r['landmark_error_iod_drawn']['n']} sketches) | mean {r['landmark_error_iod_drawn']['mean'] * 100:.1f} %, "
                f"median {r['landmark_error_iod_drawn']['median'] * 100:.1f} % |"]
              if r.get("landmark_error_iod_drawn", {}).get("mean") is not None else []),
             f"| false alarms (no-face drawings) | {r['false_alarms']['rate'] * 100:.1f} % |",
             f"| locator time, 2048x2048 layer (downscaled copy included) | {r['locate_2048_ms']:.1f} ms |", "",
             "False alarms by kind: " + ", ".join(f"{k} {v}" for k, v in r["false_alarms"].items() if k != "rate")
             + ".", "", "| face width / canvas | sketches | detected | landmark error / IOD |", "|---|---|---|---|"]
    for k, v in r["by_face_width"].items():
        err = f"{v['error_iod'] * 100:.1f} %" if v["error_iod"] is not None else "-"
        lines.append(f"| {k}-{float(k) + 0.1:.1f} | {v['n']} | {v['detected'] * 100:.1f} % | {err} |")
    if r.get("made_sketches"):
        lines += ["", "Sketches made from the same test photos (the same transforms; their landmarks are the photo's own, "
                      "exact, where an artist's drawing sits a little off the photo):", "",
                  "| sketch | photos | detected | landmark error / IOD |", "|---|---|---|---|"]
        for k, v in r["made_sketches"].items():
            err = f"{v['error_iod'] * 100:.1f} %" if v["error_iod"] is not None else "-"
            lines.append(f"| {k} | {v['n']} | {v['detected'] * 100:.1f} % | {err} |")
    f = r.get("face_ssim")
    if f and "skipped" not in f:
        lines += ["", f"Face SSIM to the true photo (inside the face oval, blend 0.5, {f['n']} "
                      f"{'colour-dodge sketches of the photos' if f.get('kind') == 'dodge' else 'sketches'}; align=auto found no "
                      f"face on {f['no_face']}):", "", "| input | align=template | align=auto |", "|---|---|---|",
                  f"| untransformed sketch | {f['template (untransformed)']} | {f['auto (untransformed)']} |",
                  f"| transformed sketch (result warped back) | {f['template (transformed)']} | "
                  f"{f['auto (transformed)']} |"]
        if f.get("auto (transformed, template frame)") is not None:
            lines.append(f"| transformed sketch, the face in the frame the locator found (before it goes back into "
                         f"the layer) | - | {f['auto (transformed, template frame)']} |")
    if r.get("systematic"):
        sy = r["systematic"]
        lines += ["", "Systematic misalignment (the mean of found alignment after the true one's inverse, in the 256 "
                      "template; scale above 1 = the found face is taken a little small):", "",
                  "| sketches | n | scale | mean shift x, y (px) | sd x, y (px) |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {v['scale']:.4f} | {v['shift_px_at_256'][0]:+.2f}, {v['shift_px_at_256'][1]:+.2f} | "
                  f"{v['shift_sd_px'][0]:.2f}, {v['shift_sd_px'][1]:.2f} |"
                  for k, v in sy.items() if isinstance(v, dict)]
        lines += ["", f"Landmark error / eye distance on those test artist sketches: {sy['test artist error_iod'] * 100:.1f} %; "
                      f"against the truth moved by the train split's mean misalignment: "
                      f"{sy[next(k for k in sy if 'removed' in k)] * 100:.1f} %."]
    if r.get("calibration"):
        lines += ["", "Threshold calibration (detection / false alarms):", "", "| threshold | detection | false alarms |",
                  "|---|---|---|"] + [f"| {t} | {v['detection'] * 100:.1f} % | {v['false_alarms'] * 100:.1f} % |"
                                      for t, v in r["calibration"].items()]
    return "\n".join(lines) + "\n"


def face_ssim(cases, root, locator_weights, kind="artist"):
    """SSIM to the true photo in the untransformed frame: align=template on the untransformed sketch vs
    align=auto on the transformed one (warped back). kind 'dodge': a colour-dodge sketch of the photo takes the
    artist's place (the same transform), so the landmarks the template path aligns by are exactly the drawing's."""
    from facesketch.backend.engines.base import JobContext
    from facesketch.backend.engines.face import FaceEngine
    from .metrics import masked_ssim
    from .pencil import dodge_sketch
    eng = FaceEngine(locator_weights)
    ok, why = eng.readiness()
    if not ok:
        return {"skipped": why}
    from facesketch.backend.engines.face_placement import face_mask, locate, to_canvas
    region = face_mask(256) >= 0.99     # inside the face oval that align=auto composites (all variants alike)
    rows = {"template (untransformed)": [], "template (transformed)": [], "auto (transformed)": [],
            "auto (untransformed)": [], "auto (transformed, template frame)": []}
    missed = 0
    for it, sketch, m, hit in cases:
        pts = np.array(it["points"], np.float64)
        a5 = alignment_matrix(key_points(pts), 256)     # the untransformed frame
        with Image.open(os.path.join(root, it["photo"])) as im:
            rgb = im.convert("RGB")
        photo = np.asarray(warp(rgb, a5, 256, fill=0))
        if kind == "dodge":
            sketch = dodge_sketch(np.asarray(rgb))
        ref_sketch = warp(sketch, a5, 256, fill=255)
        gender = "female" if it["gender"] == 1 else "male"

        def run(gray_u8, align):
            rgba = np.concatenate([np.repeat(gray_u8[..., None], 3, 2), np.full(gray_u8.shape + (1,), 255, np.uint8)], 2)
            p = eng.validate_params({"align": align, "outside": "paper", "gender": gender, "master": 0.5})
            out = eng.run({"image": rgba}, p, ("face",), JobContext("cpu"))["face"]
            return (np.clip(out[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)

        to_ref = a5 @ np.vstack([L.invert(m), [0, 0, 1]])   # transformed layer -> the untransformed frame
        layer = warp(sketch, m, CANVAS, fill=255)
        tpl = run(ref_sketch, "template")
        rows["template (untransformed)"].append(masked_ssim(photo, tpl, region))
        tpl_moved = np.asarray(warp(run(layer, "template"), to_ref, 256, fill=255))
        rows["template (transformed)"].append(masked_ssim(photo, tpl_moved, region))
        try:
            auto_ref = run(ref_sketch, "auto")
            rows["auto (untransformed)"].append(masked_ssim(photo, auto_ref, region))
            back = np.asarray(warp(run(layer, "auto"), to_ref, 256, fill=255))
            rows["auto (transformed)"].append(masked_ssim(photo, back, region))
            # the face as the generator draws it in the frame the locator found, before it is composited back
            # into the layer: the face metric after alignment, without the measure's two output resamplings
            found = locate(np.asarray(layer, np.float32) / 255, eng._locator.get("cpu"), 256)
            canon = (to_canvas(np.asarray(layer, np.float32) / 255, found.matrix, 256) * 255 + 0.5).astype(np.uint8)
            rows["auto (transformed, template frame)"].append(masked_ssim(photo, run(canon, "template"), region))
        except Exception as e:  # no_face: counted
            if getattr(e, "code", None) != "no_face":
                raise
            missed += 1
    return {"n": len(cases), "no_face": missed, "kind": kind,
            **{k: round(float(np.mean(v)), 4) if v else None for k, v in rows.items()}}


if __name__ == "__main__":
    sys.exit(main())
