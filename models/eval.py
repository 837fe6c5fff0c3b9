"""FS2K evaluation of the sketch model against baselines on the official test split.

    python -m facesketch.models.eval sketch --data PACK [--limit N] [--pix2pix PATH]
    python -m facesketch.models.eval face   --data FACEPACK [--limit N] [--old-weights OLD]   (models/eval_face.py)
    python -m facesketch.models.eval locator [--limit N]            (models/eval_locator.py)

Methods, all on the pack's aligned 256x256 test photos, compared with the aligned artist sketch of
each photo (each photo is drawn in its own annotated style):
  * ours: lite HIDA (models/weights/hida_lite.safetensors) with depth from our depth network;
  * ours, no depth: the same generator fed an all-zero depth map (the HIDA paper's ablation);
  * ours, mesh depth: fed the pack's MediaPipe depth map (what it was trained with);
  * ours, previous weights (`--old-weights DIR`): the same pipeline with the weights we shipped before,
    so that old and new are measured side by side in one run;
  * colour dodge: the classic photo-editor pencil sketch, grey / (1 - blur(inverted grey)), Gaussian
    radius 6 px at a 250-px picture (models.pencil.dodge_sketch);
  * pencil filter: models.pencil.pencil_sketch (no learning);
  * pix2pix U-Net: same size, same data, same step budget (python -m facesketch.models.train pix2pix).
Metrics: SCOOT and SSIM (models.metrics, FS2K toolbox definitions), per style and overall.
`--limit N` evaluates N photos spread evenly over the split (so all three styles keep their
proportions). Writes docs/results/sketch.md and docs/results/sketch_grid.png.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

from .data.made_sketches import spread_evenly
from .data.pack import load_pack
from .export import load_weights, read_metadata
from .paths import REPO, RESULTS_DIR, cache_dir, weights_dir
from .hida import style_vector_from_labels
from .metrics import scoot, ssim
from .pencil import dodge_sketch, pencil_sketch

RESULTS = RESULTS_DIR
DEFAULT_PIX2PIX = cache_dir("train", "pix2pix", "pix2pix.safetensors")


def _to_u8(t: torch.Tensor) -> np.ndarray:
    return ((t.float().clamp(-1, 1) + 1) * 127.5 + 0.5).byte().cpu().numpy()


def evaluate(args) -> int:
    torch.set_num_threads(args.threads)
    pack = load_pack(args.data, "test")
    n_all = len(pack)
    idx = spread_evenly(n_all, args.limit)
    sketch_path = os.path.join(args.weights, "hida_lite.safetensors")
    depth_path = os.path.join(args.weights, "depth_lite.safetensors")
    gen = load_weights(sketch_path, "sketch")
    depth_net = load_weights(depth_path, "depth")
    p2p = load_weights(args.pix2pix, "pix2pix") if args.pix2pix and os.path.isfile(args.pix2pix) else None
    old = None
    if args.old_weights:
        old_sketch = os.path.join(args.old_weights, "hida_lite.safetensors")
        old = (load_weights(old_sketch, "sketch"),
               load_weights(os.path.join(args.old_weights, "depth_lite.safetensors"), "depth"))
    steps = {"ours": read_metadata(sketch_path).get("step", "?"),
             "old": read_metadata(old_sketch).get("step", "?") if old else None,
             "pix2pix": read_metadata(args.pix2pix).get("step", "?") if p2p else None}

    methods = (["ours"] + (["ours, previous weights"] if old else []) + ["ours, no depth", "ours, mesh depth",
               "colour dodge", "pencil filter"] + (["pix2pix U-Net"] if p2p else []))
    scores = {m: {"scoot": [], "ssim": []} for m in methods}
    styles = pack.styles[idx]
    t0 = time.time()
    grid_rows = []
    grid_pick = set(idx[np.linspace(0, len(idx) - 1, 6).round().astype(int)].tolist())
    for start in range(0, len(idx), args.batch):
        b = idx[start:start + args.batch]
        photo = torch.from_numpy(pack.photos[b]).permute(0, 3, 1, 2).float() / 127.5 - 1
        mesh_depth = torch.from_numpy(pack.depths[b])[:, None].float() / 255
        style = style_vector_from_labels(torch.from_numpy(pack.styles[b].astype(np.int64)))
        with torch.inference_mode():
            depth = depth_net(photo)
            outs = {"ours": gen(photo, depth, style)[0],
                    "ours, no depth": gen(photo, torch.zeros_like(depth), style)[0],
                    "ours, mesh depth": gen(photo, mesh_depth, style)[0]}
            if p2p is not None:
                outs["pix2pix U-Net"] = p2p(photo)
            if old is not None:
                outs["ours, previous weights"] = old[0](photo, old[1](photo), style)[0]
        outs = {k: _to_u8(v[:, 0]) for k, v in outs.items()}
        for j, i in enumerate(b):
            gt = pack.sketches[i]
            outs_i = {k: v[j] for k, v in outs.items()}
            outs_i["pencil filter"] = pencil_sketch(pack.photos[i])
            outs_i["colour dodge"] = dodge_sketch(pack.photos[i])
            for m in methods:
                scores[m]["scoot"].append(scoot(gt, outs_i[m]))
                scores[m]["ssim"].append(ssim(gt, outs_i[m]))
            if i in grid_pick:
                with torch.inference_mode():
                    three = gen(photo[j:j + 1].repeat(3, 1, 1, 1), depth[j:j + 1].repeat(3, 1, 1, 1),
                                style_vector_from_labels(torch.tensor([0, 1, 2])))[0]
                row = [pack.photos[i], (depth[j, 0].clamp(0, 1) * 255 + 0.5).byte().numpy()]
                row += list(_to_u8(three[:, 0]))
                if old is not None:
                    with torch.inference_mode():
                        row.append(_to_u8(old[0](photo[j:j + 1], old[1](photo[j:j + 1]), style[j:j + 1])[0][0, 0]))
                row += [outs_i["colour dodge"], gt]
                grid_rows.append(row)
        done = min(start + args.batch, len(idx))
        print(f"{done}/{len(idx)} photos ({time.time() - t0:.0f} s)", flush=True)

    os.makedirs(args.out_dir, exist_ok=True)
    _write_grid(grid_rows, os.path.join(args.out_dir, "sketch_grid.png"))
    table = _table(scores, styles, methods)
    md = _report(table, args, len(idx), n_all, steps, time.time() - t0)
    with open(os.path.join(args.out_dir, "sketch.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


def _table(scores, styles, methods):
    rows = []
    for m in methods:
        sc, ss = np.array(scores[m]["scoot"]), np.array(scores[m]["ssim"])
        row = {"method": m}
        for s in (0, 1, 2):
            sel = styles == s
            row[f"s{s + 1}"] = (sc[sel].mean(), ss[sel].mean(), int(sel.sum())) if sel.any() else None
        row["all"] = (sc.mean(), ss.mean(), len(sc))
        rows.append(row)
    return rows


def _report(table, args, n, n_all, steps, seconds) -> str:
    counts = {k: table[0][k][2] if table[0][k] else 0 for k in ("s1", "s2", "s3", "all")}
    head = ("| method | Style 1 SCOOT / SSIM | Style 2 SCOOT / SSIM | Style 3 SCOOT / SSIM | overall SCOOT | overall SSIM |\n"
            "|---|---|---|---|---|---|\n")
    lines = []
    best = max(r["all"][0] for r in table)
    for r in table:
        cells = []
        for k in ("s1", "s2", "s3"):
            cells.append(f"{r[k][0]:.4f} / {r[k][1]:.4f}" if r[k] else "–")
        overall = f"{r['all'][0]:.4f}"
        if r["all"][0] == best:
            overall = f"**{overall}**"
        lines.append(f"| {r['method']} | " + " | ".join(cells) + f" | {overall} | {r['all'][1]:.4f} |")
    return (
        "# Photo → sketch on FS2K (official test split)\n\n"
        f"Command: `python -m facesketch.models.eval sketch --data PACK"
        + (f" --limit {args.limit}" if args.limit else "")
        + (" --old-weights OLD" if args.old_weights else "")
        + (" --pix2pix P2P" if steps["pix2pix"] else "") + "`\n\n"
        f"Photos evaluated: {n} of {n_all} test photos"
        + (" (spread evenly over the split)" if n < n_all else "")
        + f"; per style: Style 1 {counts['s1']}, Style 2 {counts['s2']}, Style 3 {counts['s3']}. "
        f"Every photo is drawn in its own annotated style and compared with its artist sketch, both in the "
        f"pack's aligned 256×256 frame (FS2K's toolbox compares at the original sketch size; our frame is the "
        f"aligned crop, so numbers are not directly comparable with published tables). Higher is better for both.\n\n"
        f"Our generator: lite HIDA, {steps['ours']} training steps"
        + (f" (previous weights: {steps['old']} steps)" if steps["old"] else "") + (f"; pix2pix: {steps['pix2pix']} steps (same data, batch and step budget; the same light "
           "PatchGAN discriminator design, fed photo+sketch for pix2pix and depth+sketch for ours; pix2pix's own "
           "loss, hinge GAN + 100×L1)" if steps["pix2pix"] else "; pix2pix: not in this run (no weights given)")
        + f". Evaluation took {seconds:.0f} s on CPU.\n\n"
        + head + "\n".join(lines) + "\n\n"
        "* ours: depth from our depth network (what the engine does).\n"
        "* ours, no depth: the same generator with an all-zero depth map (HIDA's ablation).\n"
        "* ours, mesh depth: the pack's MediaPipe face-mesh depth (what the generator was trained with).\n"
        "* colour dodge: grey / (1 - blur(inverted grey)), the pencil sketch of every photo editor.\n\n"
        "![grid](sketch_grid.png)\n\n"
        "Grid columns: photo | depth (our network) | our Style 1 | Style 2 | Style 3 | "
        + ("previous weights in the photo's style | " if args.old_weights else "") + "colour dodge | artist sketch.\n"
        "Photos are from the FS2K test split (Fan et al., FS2K, https://github.com/DengPingFan/FS2K).\n"
    )


def _write_grid(rows, path: str) -> None:
    if not rows:
        return
    tiles = [[np.repeat(t[..., None], 3, 2) if t.ndim == 2 else t for t in row] for row in rows]
    img = np.concatenate([np.concatenate(r, 1) for r in tiles], 0)
    Image.fromarray(img).save(path, optimize=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["face"]:  # the face model's evaluation lives in models/eval_face.py
        from .eval_face import main as eval_face_main
        return eval_face_main(argv[1:])
    if argv[:1] == ["locator"]:  # the sketch face locator and align=auto: models/eval_locator.py
        from .eval_locator import main as eval_locator_main
        return eval_locator_main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m facesketch.models.eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["sketch", "face"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--weights", default=weights_dir())
    ap.add_argument("--old-weights", default=None, help="folder with the previously shipped sketch and depth "
                    "weights, evaluated side by side")
    ap.add_argument("--pix2pix", default=DEFAULT_PIX2PIX, help="pix2pix baseline fp16 safetensors")
    ap.add_argument("--out-dir", default=RESULTS)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    return evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
