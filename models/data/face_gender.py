"""Gender labels for the CelebA photos of the face pack, from a classifier trained on FS2K's labels.

    python -m facesketch.models.data.face_gender --pack ~/.cache/facesketch/face-pack --landmarks ~/.cache/facesketch/landmarks

The face model's feature bank is split by gender (the face engine's `gender` option). FS2K annotates it; our
CelebA subset has no attribute file, so a logistic regression on the HED VGG16's pooled relu5_3 features
(models.vgg16_hed; 128x128 aligned faces) learns it from FS2K's training photos, is checked on FS2K's test photos,
and labels each CelebA person by the mean probability over up to `--per-person` of their photos (a person's
photos vote, so one odd photo does not flip them). Writes `<pack>/genders.json`:
{"identities": {person: {"female": p, "photos": n}}, "classifier": {...accuracy...}}; load_face_pack reads it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

from . import face_template as ft
from .landmarks import key_points, read_index

SIZE = 128


def _aligned(index: dict, item: dict) -> np.ndarray:
    m = ft.alignment_matrix(key_points(np.array(item["points"])), SIZE)
    with Image.open(os.path.join(index["roots"][item["dataset"]], item["photo"])) as im:
        return np.asarray(ft.warp(im.convert("RGB"), m, SIZE, fill=0))


def features(index: dict, items: list, vgg, batch: int = 16) -> np.ndarray:
    import torch
    from tqdm import tqdm
    out = []
    for i in tqdm(range(0, len(items), batch), desc="VGG features", unit="batch", mininterval=10):
        x = torch.from_numpy(np.stack([_aligned(index, it) for it in items[i:i + batch]])).permute(0, 3, 1, 2)
        with torch.no_grad():
            out.append(vgg.pooled_features(x.float() / 127.5 - 1).numpy())
    return np.concatenate(out).astype(np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 500):
    """Standardised features, L2-regularised logistic regression by Newton's method (a few hundred features)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = np.concatenate([(x - mu) / sd, np.ones((len(x), 1))], 1)
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0]
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(y) + l2 * np.diag(np.r_[np.ones(len(w) - 1), 0])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return lambda q: 1 / (1 + np.exp(-np.concatenate([(q - mu) / sd, np.ones((len(q), 1))], 1) @ w))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", required=True, help="face pack folder (its genders.json is written)")
    ap.add_argument("--landmarks", required=True, help="models.data.landmarks' folder")
    ap.add_argument("--per-person", type=int, default=6)
    ap.add_argument("--check", type=int, default=400, help="FS2K test photos the classifier is checked on")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import torch
    from facesketch.models.vgg16_hed import VGG16HED
    torch.set_num_threads(args.threads)
    index = read_index(args.landmarks)
    have = [it for it in index["items"] if it["points"] is not None]
    fs_train = [it for it in have if it["dataset"] == "fs2k" and it["split"] == "train"]
    fs_test = [it for it in have if it["dataset"] == "fs2k" and it["split"] == "test"]
    fs_test = [fs_test[i] for i in np.linspace(0, len(fs_test) - 1, min(args.check, len(fs_test))).astype(int)]
    people: dict[str, list] = {}
    for it in have:
        if it["dataset"] == "celeba":
            people.setdefault(it["photo"].split("/")[1], []).append(it)
    celeb = [p for photos in people.values() for p in photos[:args.per_person]]
    vgg = VGG16HED.from_file()
    f_train, f_test, f_celeb = (features(index, items, vgg) for items in (fs_train, fs_test, celeb))
    predict = fit_logistic(f_train, np.array([it["gender"] for it in fs_train], np.float64))
    y_test = np.array([it["gender"] for it in fs_test])
    accuracy = float(((predict(f_test) > 0.5) == y_test).mean())
    p_celeb = predict(f_celeb)
    ids = {}
    for it, p in zip(celeb, p_celeb):
        ids.setdefault(it["photo"].split("/")[1], []).append(float(p))
    result = {"classifier": {"features": "HED VGG16 pooled relu5_3, 128x128 aligned face",
                             "model": "L2 logistic regression", "trained_on": f"FS2K train, {len(fs_train)} photos",
                             "fs2k_test_accuracy_per_photo": round(accuracy, 4), "checked_on": len(fs_test),
                             "photos_per_person": args.per_person},
              "identities": {k: {"female": round(float(np.mean(v)), 4), "photos": len(v)} for k, v in sorted(ids.items())}}
    sure = np.mean([abs(v["female"] - 0.5) > 0.3 for v in result["identities"].values()])
    result["classifier"]["people_decided_clearly"] = round(float(sure), 4)
    path = os.path.join(args.pack, "genders.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)
    n_f = sum(v["female"] > 0.5 for v in result["identities"].values())
    print(f"FS2K test accuracy {accuracy:.3f} per photo ({len(fs_test)} photos); {len(ids)} CelebA people: {n_f} "
          f"female, {len(ids) - n_f} male, {sure:.0%} with p < 0.2 or > 0.8 -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
