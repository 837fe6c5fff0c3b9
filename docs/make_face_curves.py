"""Learning curves of the lite2 face campaign (issue 11): stage-2 training losses and the evaluated checkpoints.

    python docs/make_face_curves.py

Reads docs/results/face_lite2_stage2_log.tsv (the training log: a new header line where the logged losses change)
and docs/results/face_lite2_evals.tsv (one row per side-by-side evaluation in docs/results/face.md), writes
docs/results/face_lite2_curves.png. Pillow only: the project has no plotting library.
"""
from __future__ import annotations

import csv
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facesketch.models.paths import RESULTS_DIR

# where the recipe changed (the recipe log in the README): drawn as dashed lines
PHASES = ((2540, "GAN on"), (3437, "VGG to relu5_3"))
W, H, PAD = 420, 300, 48
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (140, 86, 75))


def read_log(path: str) -> list[dict[str, float]]:
    """Rows of the stage-2 log; each header line names the columns of the rows below it."""
    rows, names = [], None
    with open(path) as f:
        for parts in csv.reader(f, delimiter="\t"):
            if parts and parts[0] == "step":
                names = parts
            elif parts and names:
                rows.append({k: float(v) for k, v in zip(names, parts)})
    return rows


def smooth(y: np.ndarray, n: int = 15) -> np.ndarray:
    if len(y) < n:
        return y
    k = np.ones(n) / n
    return np.convolve(np.pad(y, (n // 2, n - 1 - n // 2), mode="edge"), k, mode="valid")


def panel(title: str, series: list[tuple[str, np.ndarray, np.ndarray]], xmax: float,
          hlines: tuple = (), font=None) -> Image.Image:
    """One line chart: series of (label, x, y); hlines of (label, y) drawn grey."""
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    ys = np.concatenate([s[2] for s in series] + [np.array([v for _, v in hlines], float)])
    lo, hi = float(ys.min()), float(ys.max())
    lo, hi = lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9)
    x0, y0, x1, y1 = PAD, 24, W - 12, H - 30

    def to_px(x, y):
        return x0 + (x1 - x0) * np.asarray(x) / xmax, y1 - (y1 - y0) * (np.asarray(y) - lo) / (hi - lo)

    d.rectangle((x0, y0, x1, y1), outline=(120, 120, 120))
    d.text((x0, 4), title, fill="black", font=font)
    for t in np.linspace(lo, hi, 5):
        _, py = to_px(0, t)
        d.text((4, py - 6), f"{t:.3g}", fill=(90, 90, 90), font=font)
    for t in range(0, int(xmax) + 1, 1000):
        px, _ = to_px(t, lo)
        d.text((px - 10, y1 + 4), str(t), fill=(90, 90, 90), font=font)
    for i, (step, label) in enumerate(PHASES):
        px, _ = to_px(step, lo)
        for yy in range(int(y0), int(y1), 8):
            d.line((px, yy, px, yy + 4), fill=(150, 150, 150))
        d.text((px - 6 * len(label) - 3, y0 + 3 + 14 * i), label, fill=(110, 110, 110), font=font)
    for label, v in hlines:
        _, py = to_px(0, v)
        d.line((x0, py, x1, py), fill=(190, 190, 190))
        d.text((x1 - 6 * len(label) - 4, py - 13), label, fill=(110, 110, 110), font=font)
    for i, (label, x, y) in enumerate(series):
        c = COLOURS[i % len(COLOURS)]
        px, py = to_px(x, y)
        if len(x) > 12:
            d.line(list(zip(px.tolist(), py.tolist())), fill=c, width=2)
        else:
            for a, b in zip(px, py):
                d.ellipse((a - 4, b - 4, a + 4, b + 4), fill=c)
            if len(x) > 1:
                d.line(list(zip(px.tolist(), py.tolist())), fill=c, width=1)
        d.text((x0 + 6, y0 + 16 + 14 * i), label, fill=c, font=font)
    return img


def main(argv=None) -> int:
    log = read_log(os.path.join(RESULTS_DIR, "face_lite2_stage2_log.tsv"))
    with open(os.path.join(RESULTS_DIR, "face_lite2_evals.tsv")) as f:
        evals = list(csv.DictReader(f, delimiter="\t"))
    step = np.array([r["step"] for r in log])
    xmax = max(step.max(), max(float(e["step"]) for e in evals if e["step"])) * 1.03
    font = ImageFont.load_default(12)

    def col(name, upto=None):
        keep = np.array([name in r and (upto is None or r["step"] <= upto) for r in log])
        return step[keep], smooth(np.array([r[name] for r, k in zip(log, keep) if k]))

    deep = PHASES[1][0]   # from here the perceptual loss has two more (larger) layers: another curve
    p1 = panel("stage 2 training losses (batch 4, moving mean of 15 logs)",
               [("L1 (x10 in the loss)", *col("l1")), ("1 - SSIM (x2)", *col("1-ssim"))], xmax, font=font)
    vx, vy = col("vgg", deep)
    dx, dy = (step[step > deep], smooth(np.array([r["vgg"] for r in log if r["step"] > deep])))
    p2 = panel("perceptual loss (HED-VGG16, x1)", [("relu1_2..relu3_3", vx, vy)] +
               ([("relu1_2..relu5_3", dx, dy)] if len(dx) else []), xmax, font=font)
    ours = [e for e in evals if e["what"] == "lite2"]
    ref = {e["what"]: e for e in evals if e["what"] != "lite2"}
    shipped_ssim, shipped_fd = float(ref["shipped"]["ssim_artist"]), float(ref["shipped"]["frechet"])
    mean_photo = float(ref["mean training photo"]["ssim_artist"])
    p3 = panel("SSIM, artist sketches, blend 0.5 (200 FS2K test)",
               [("lite2 checkpoints", np.array([float(e["step"]) for e in ours]),
                 np.array([float(e["ssim_artist"]) for e in ours]))], xmax,
               hlines=(("target", mean_photo + 0.02), ("mean training photo", mean_photo), ("shipped", shipped_ssim)),
               font=font)
    fd = [e for e in ours if e["frechet"]]
    p4 = panel("Frechet HED-VGG distance (lower is better)",
               [("lite2 checkpoints", np.array([float(e["step"]) for e in fd]),
                 np.array([float(e["frechet"]) for e in fd]))], xmax,
               hlines=(("shipped", shipped_fd), ("target: half of shipped", shipped_fd / 2),
                       ("real training photos", float(ref["real training photos"]["frechet"]))), font=font)
    out = Image.new("RGB", (2 * W, 2 * H), "white")
    for i, p in enumerate((p1, p2, p3, p4)):
        out.paste(p, ((i % 2) * W, (i // 2) * H))
    path = os.path.join(RESULTS_DIR, "face_lite2_curves.png")
    out.save(path, optimize=True)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
