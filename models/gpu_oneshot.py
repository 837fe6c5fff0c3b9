"""One-shot face training on a borrowed GPU machine (this workplace's `run` tool: an NVIDIA H200, at most 10 minutes
a command and 15 minutes in all, no internet, a working tree of at most 64 MiB, at most 8 files of 16 MiB back).

Here, on the CPU machine (writes the git-ignored folder .oneshot/ and prints the `run` call to make):

    python -m facesketch.models.gpu_oneshot prepare --data FACEPACK [--state STATEDIR] [--out .oneshot] [--budget-mb auto]

There, from the repository root (what the printed call runs):

    python3 -m models.gpu_oneshot train --oneshot .oneshot --minutes 8 --out $OUT [-- more models.train_face options]

prepare measures the working tree that travels (tracked and untracked-not-ignored files) and fills the room left
under 64 MiB (less --margin-mb) with, in this order:
  * the pytorch-msssim wheel (the SSIM loss; the device lacks the package): pip download --no-deps;
  * the training state of STATEDIR (stage1.pt, stage2.pt) as fp16 weights WITHOUT optimizer states (Adam restarts
    its moments there); nothing at all when models/weights/face_lite.safetensors is the export of this very state
    (same config and steps: the weights travel inside the tracked file); the discriminator only if the stage-2
    log shows it was trained;
  * the HED VGG16 convs that train_face's perceptual loss reads (fp16; the whole converted file is 59 MB), else the
    device trains without the perceptual loss;
  * then as many training photos as fit, evenly spread over the pack (every prefix of the order is), each with its
    sketches: photos as JPEG, sketches as WebP, in one data.npz of byte blobs with an index.json.

train unpacks the photos into a face pack under /tmp (models/data/face_pack.py's layout), measures the latency of
the official (512) and lite2 configs with random weights (encode + generate, batch 1, after warm-up), trains stage 2
(stage 1 first when no state came) with models.train_face for a fixed wall time (a timer sends this process SIGTERM;
train_face writes its checkpoint and stops), exports face_lite.safetensors (its feature bank holds the carried
photos only: export again here from the full pack) and leaves in --out at most 8 files of at most 16 MiB:
latency.json, summary.json, face_lite.safetensors, stage2.pt (fp16 weights, empty optimizer states: put it next to
the same stage1.pt and `train face --export` or `--resume`), stage1.pt when stage 1 ran there, log.txt, the logs'
TSV and the last sample grid.
"""
from __future__ import annotations

import argparse
import glob
import inspect
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import torch

from .paths import REPO

MIB = 1 << 20
TREE_LIMIT = 64 * MIB
BACK_FILES, BACK_SIZE = 8, 16 * MIB
WHEEL = "pytorch-msssim==1.0.0"
TRACKED_EXPORT = os.path.join(REPO, "models", "weights", "face_lite.safetensors")
NDF = 32  # train_face's default --ndf: the discriminator the state is rebuilt with


# ---------------------------------------------------------------------------------------------- prepare

def tree_files(repo: str = REPO) -> tuple[set, int]:
    """Repo-relative paths that travel with every `run` call (tracked + untracked-not-ignored, shared/), bytes."""
    out = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout.decode()
    files = {p for p in out.split("\0") if p}
    for top, _, names in os.walk(os.path.join(repo, "shared")):
        files |= {os.path.relpath(os.path.join(top, n), repo) for n in names}
    return files, sum(os.lstat(os.path.join(repo, p)).st_size for p in files if os.path.lexists(os.path.join(repo, p)))


def travels(path: str) -> bool:
    """Whether a file is part of the working tree that every `run` call sends."""
    full = os.path.abspath(path)
    return full.startswith(REPO + os.sep) and os.path.relpath(full, REPO) in tree_files()[0]


def spread_order(n: int) -> np.ndarray:
    """0..n-1 by bit-reversed index: every prefix is spread evenly over the range (0, n/2, n/4, 3n/4, ...)."""
    return np.argsort([int(f"{i:032b}"[::-1], 2) for i in range(n)], kind="stable")


def encode(a: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image
    b = io.BytesIO()
    if fmt == "WEBP" and quality >= 100:
        Image.fromarray(a).save(b, "WEBP", lossless=True)
    else:
        Image.fromarray(a).save(b, fmt, quality=quality)
    return b.getvalue()


def decode(b: bytes, mode: str) -> np.ndarray:
    from PIL import Image
    with Image.open(io.BytesIO(b)) as im:
        return np.asarray(im.convert(mode))  # WebP keeps no grey mode: sketches come back RGB


def half(state: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def disc_was_trained(state_dir: str) -> bool:
    """The stage-2 log has a discriminator loss column (with --gan-weight 0 the discriminator never learns)."""
    path = os.path.join(state_dir, "log_stage2.tsv")
    if not os.path.isfile(path):
        return True
    return any(line.startswith("step\t") and "d" in line.rstrip("\n").split("\t") for line in open(path))


def vgg_convs_needed() -> list[str] | None:
    """The HED VGG16 convs train_face's perceptual loss runs (up to the deepest 'reluK_N' it names)."""
    from . import train_face
    from .vgg16_hed import CONVS
    found = re.findall(r"[\"']relu(\d)_(\d)[\"']", inspect.getsource(train_face))
    if not found:
        return None
    deepest = max(found)
    return [n for n, _, _ in CONVS if (n[4], n[6]) <= deepest]


def pack_state(state_dir: str, export: str, notes: list) -> tuple[dict, dict | None]:
    """(fp16 tensors to carry, state metadata) from STATEDIR's checkpoints; ({}, None) when there is none."""
    from .training import load_checkpoint
    s1p, s2p = (os.path.join(state_dir, f"stage{i}.pt") for i in (1, 2))
    if not os.path.isfile(s1p):
        notes.append(f"no stage1.pt in {state_dir}: the device trains stage 1, then stage 2, from scratch")
        return {}, None
    s1 = load_checkpoint(s1p)
    s2 = load_checkpoint(s2p) if os.path.isfile(s2p) else None
    if s2 is not None and s2.get("stage1_step", s1["step"]) != s1["step"]:
        notes.append(f"stage2.pt was trained on the stage-1 encoders of step {s2['stage1_step']}, stage1.pt is step "
                     f"{s1['step']}: stage 2 starts again there")
        s2 = None
    meta = {"config": s1.get("config", "lite2"), "stage1_step": s1["step"], "stage2_step": s2 and s2["step"],
            "from_export": None, "disc": False}
    tensors = {}
    if s2 is not None and os.path.isfile(export) and travels(export):
        from safetensors import safe_open
        with safe_open(export, "pt") as f:
            em = f.metadata() or {}
        if em.get("config") == meta["config"] and json.loads(em.get("trained_steps", "{}")) == \
                {"stage1": s1["step"], "stage2": s2["step"]}:
            meta["from_export"] = os.path.relpath(os.path.abspath(export), REPO)
            notes.append(f"the model's weights travel inside {meta['from_export']} (the export of this state)")
    if meta["from_export"] is None:
        parts = ("encoders.", "image_decoders.") + (("feature_decoders.", "generator.") if s2 else ())
        model = dict(s1["model"])
        for part in ("feature_decoders", "generator") if s2 else ():
            model.update({f"{part}.{k}": v for k, v in s2[part].items()})
        tensors = {f"model.{k}": v for k, v in half(model).items()
                   if k.startswith(parts) and not k.endswith("num_batches_tracked")}
        if s2 is not None:
            notes.append("models/weights/face_lite.safetensors is not the export of this state: its weights travel "
                         f"as fp16 (export it first, `train face --out {state_dir} --export ...`, to save that room)")
    if s2 is not None and disc_was_trained(state_dir):
        tensors |= {f"disc.{k}": v for k, v in half(s2["disc"]).items()}
        meta["disc"] = True
    notes.append("optimizer states are not carried: Adam restarts its moments on the device")
    return tensors, meta


def prepare(args) -> int:
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        if os.listdir(out) and not os.path.isfile(os.path.join(out, "index.json")):
            raise SystemExit(f"{out} is not empty and was not made by prepare: choose another --out")
        shutil.rmtree(out)  # before measuring: an old .oneshot not ignored by git would count twice
    os.makedirs(out)
    try:
        return _prepare(args, out)
    except BaseException:  # a failed prepare leaves no half-made folder to carry
        shutil.rmtree(out)
        raise


def _prepare(args, out: str) -> int:
    from safetensors.torch import load_file, save_file
    from .data.face_pack import load_face_pack
    from .vgg16_hed import default_path
    rel = os.path.relpath(out, REPO)
    if rel.startswith(".."):
        print(f"warning: {out} is outside the repository: `carry` takes paths inside it")
    elif subprocess.run(["git", "-C", REPO, "check-ignore", "-q", rel]).returncode != 0:
        print(f"warning: {rel} is not git-ignored: it would travel (and count) twice")
    _, tree = tree_files()
    auto = args.budget_mb == "auto"
    room = int(TREE_LIMIT - tree - args.margin_mb * MIB) if auto else int(float(args.budget_mb) * MIB)
    print(f"working tree that travels: {tree / MIB:.1f} MiB; room for {rel}: {room / MIB:.1f} MiB"
          f"{' (64 MiB - tree - margin)' if auto else ' (--budget-mb)'}")
    if room <= 0:
        raise SystemExit(f"no room: the working tree alone is {tree / MIB:.1f} MiB of the 64 MiB a run may send "
                         f"(biggest tracked files: `git ls-files -z | xargs -0 du -b | sort -n | tail`)")
    notes, sizes, used = [], {}, 16 << 10   # index.json and the npz headers

    def add(name: str) -> int:
        sizes[name] = os.path.getsize(os.path.join(out, name))
        return sizes[name]

    # 1. the SSIM loss's package
    if args.no_wheel:
        notes.append("no pytorch-msssim wheel (--no-wheel): without the package there the device drops the SSIM loss")
    else:
        os.makedirs(os.path.join(out, "wheels"))
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d",
                            os.path.join(out, "wheels"), WHEEL], capture_output=True, text=True)
        if r.returncode:
            notes.append(f"pip download {WHEEL} failed ({r.stderr.strip()[-200:]}): the device drops the SSIM loss")
        for w in os.listdir(os.path.join(out, "wheels")):
            used += add(os.path.join("wheels", w))
    # 2. the training state
    tensors, state = pack_state(args.state, args.export_file, notes) if args.state else ({}, None)
    if not args.state:
        notes.append("no --state: the device trains stage 1, then stage 2, from scratch")
    if tensors:
        save_file(tensors, os.path.join(out, "state.safetensors"))
        used += add("state.safetensors")
    if used > room:
        raise SystemExit(f"the state alone needs {used / MIB:.1f} MiB of the {room / MIB:.1f} MiB room: "
                         + " ".join(notes))
    # 3. the perceptual loss's VGG convs
    convs = vgg_convs_needed()
    vgg_path = args.vgg or default_path()
    if args.no_vgg or not os.path.isfile(vgg_path) or convs is None:
        why = "--no-vgg" if args.no_vgg else (f"{vgg_path} not found" if convs else "no VGG layers found in train_face")
        notes.append(f"no HED VGG16 ({why}): the device trains without the perceptual loss")
    else:
        vgg = {k: v.half() for k, v in load_file(vgg_path).items() if k.split(".")[0] in convs}
        save_file(vgg, os.path.join(out, "vgg_convs.safetensors"))
        if used + os.path.getsize(os.path.join(out, "vgg_convs.safetensors")) > room:
            os.remove(os.path.join(out, "vgg_convs.safetensors"))
            notes.append(f"no room for the VGG convs {convs[0]}..{convs[-1]} (fp16, "
                         f"{sum(v.numel() * 2 for v in vgg.values()) / MIB:.1f} MiB): no perceptual loss there")
        else:
            used += add("vgg_convs.safetensors")
            notes.append(f"HED VGG16 convs {convs[0]}..{convs[-1]} in fp16 (the deeper ones are not needed)")
    # 4. the photos, with all their sketches, while they fit
    pack = load_face_pack(args.data, "train")
    genders = pack.genders
    by_photo = np.split(np.argsort(pack.sketch_of[:, 0], kind="stable"),
                        np.cumsum(np.bincount(pack.sketch_of[:, 0], minlength=len(pack.items)))[:-1])
    keep, misses = {}, 0
    for n in spread_order(len(pack.items)):
        rows = by_photo[n][:args.max_sketches] if args.max_sketches else by_photo[n]
        blobs = [encode(np.asarray(pack.photos[n]), "JPEG", args.photo_quality)] + \
                [encode(np.asarray(pack.sketches[r]), "WEBP", args.sketch_quality) for r in rows]
        cost = sum(map(len, blobs)) + len(json.dumps(pack.items[n])) + 16 * len(blobs)
        if used + cost > room:
            misses += 1
            if misses >= 16:  # photos differ in size: a few more tries, then stop
                break
            continue
        keep[int(n)] = (rows, blobs)
        used += cost
    if not keep:
        raise SystemExit(f"no photo fits the {(room - used) / MIB:.2f} MiB left for data: " + " ".join(notes))
    photos = sorted(keep)
    items = [{k: it[k] for k in ("id", "dataset", "identity")} | {"gender": None if g < 0 else int(g)}
             for it, g in ((pack.items[n], genders[n]) for n in photos)]
    blob_p = [keep[n][1][0] for n in photos]
    blob_s = [b for n in photos for b in keep[n][1][1:]]
    sketch_of = np.array([(i, pack.sketch_of[r, 1]) for i, n in enumerate(photos) for r in keep[n][0]], np.int32)
    np.savez(os.path.join(out, "data.npz"), photos=np.frombuffer(b"".join(blob_p), np.uint8),
             photo_ends=np.cumsum([len(b) for b in blob_p]), sketches=np.frombuffer(b"".join(blob_s), np.uint8),
             sketch_ends=np.cumsum([len(b) for b in blob_s]), sketch_of=sketch_of)
    add("data.npz")
    kinds = {k: int((sketch_of[:, 1] == i).sum()) for i, k in enumerate(pack.kinds) if (sketch_of[:, 1] == i).any()}
    notes.append(f"{len(photos)} of {len(pack.items)} training photos (evenly spread), {len(sketch_of)} sketches "
                 f"{kinds}: JPEG q{args.photo_quality}, WebP "
                 f"{'lossless' if args.sketch_quality >= 100 else f'q{args.sketch_quality}'}")
    if len(photos) < 500:
        notes.append(f"only {len(photos)} photos: minutes of GPU training will overfit them; the run is most useful "
                     "for its speed and latency numbers")
    index = {"made": time.strftime("%Y-%m-%d %H:%M:%S"), "source": os.path.abspath(args.data),
             "size": int(pack.photos.shape[1]), "kinds": list(pack.kinds), "items": items,
             "source_rows": photos, "state": state, "vgg_convs": convs if "vgg_convs.safetensors" in sizes else None,
             "notes": notes, "sizes": sizes, "tree_bytes": tree, "room_bytes": room}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    add("index.json")
    total = sum(sizes.values())
    for n in notes:
        print("-", n)
    print(f"{rel}: {total / MIB:.2f} MiB (" + ", ".join(f"{k} {v / MIB:.2f}" for k, v in sizes.items()) + ")")
    if auto and tree + total > TREE_LIMIT:
        raise SystemExit(f"{rel} came out at {total / MIB:.2f} MiB: over the room; raise --margin-mb")
    print(f"working tree + {rel}: {(tree + total) / MIB:.1f} of 64 MiB"
          + (" -- OVER: the run tool refuses it" if tree + total > TREE_LIMIT else ""))
    minutes = args.minutes
    cmd = f'PYTHONUNBUFFERED=1 python3 -m models.gpu_oneshot train --oneshot {rel} --minutes {minutes:g} --out "$OUT"'
    timeout = min(600, int(minutes * 60 + 110))
    print("the run tool call (one call; about a minute of start-up and 1-2 minutes of unpacking, latency and export "
          "come on top of the training minutes; 15 minutes of device time in all leave no room for a second call):")
    print(json.dumps({"command": cmd, "carry": [rel], "timeout_s": timeout}))
    if minutes * 60 + 100 > 600:
        print("warning: --minutes leaves too little of the 10-minute command limit for unpacking, latency and export")
    return 0


# ---------------------------------------------------------------------------------------------- train (device)

def unpack(oneshot: str, index: dict, root: str):
    z = np.load(os.path.join(oneshot, "data.npz"))

    def blobs(name, ends, mode):
        data, ends = z[name].tobytes(), z[ends]
        return [decode(data[a:b], mode) for a, b in zip(np.r_[0, ends[:-1]], ends)]
    from .data import face_pack
    return face_pack.write(root, "train", index["items"], index["kinds"], index["size"],
                           blobs("photos", "photo_ends", "RGB"), blobs("sketches", "sketch_ends", "L"),
                           z["sketch_of"])


def restore_state(oneshot: str, meta: dict | None, state_dir: str) -> None:
    """stage1.pt / stage2.pt as train_face reads them, from the carried fp16 weights (or the tracked export they
    are the export of) with fresh optimizer states."""
    if meta is None:
        return
    from safetensors.torch import load_file
    from .deepfacedrawing import DeepFaceDrawing, get_config, load_safetensors
    from .discriminators import MultiscaleDiscriminator
    from .train_face import write_state
    model = DeepFaceDrawing(get_config(meta["config"]))
    if meta["from_export"]:
        model.load_state_dict(load_safetensors(os.path.join(REPO, meta["from_export"]))[0].state_dict())
    path = os.path.join(oneshot, "state.safetensors")
    tensors = load_file(path) if os.path.isfile(path) else {}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False)
    disc = None
    if meta["stage2_step"] is not None and meta["disc"]:
        disc = MultiscaleDiscriminator(1 + 3, ndf=NDF)
        disc.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
    write_state(model, state_dir, meta["stage1_step"], meta["stage2_step"], disc, ndf=NDF)


def restore_vgg(oneshot: str, index: dict, cache: str) -> bool:
    """The carried convs as a full vgg16_hed.safetensors under cache/vgg (zeros for the convs the loss never
    reaches), for FACESKETCH_CACHE=cache; False when the perceptual loss cannot run."""
    from safetensors.torch import load_file, save_file
    from .vgg16_hed import CONVS, FILENAME
    path = os.path.join(oneshot, "vgg_convs.safetensors")
    need = vgg_convs_needed()
    if not os.path.isfile(path) or need is None or not set(need) <= set(index["vgg_convs"] or ()):
        return False
    carried = {k: v.float() for k, v in load_file(path).items()}
    full = {}
    for name, cin, cout in CONVS:
        full[f"{name}.weight"] = carried.get(f"{name}.weight", torch.zeros(cout, cin, 3, 3))
        full[f"{name}.bias"] = carried.get(f"{name}.bias", torch.zeros(cout))
    os.makedirs(os.path.join(cache, "vgg"), exist_ok=True)
    save_file(full, os.path.join(cache, "vgg", FILENAME))
    os.environ["FACESKETCH_CACHE"] = cache
    return True


class Alarm:
    """SIGTERM to this process after `seconds`, then again every few seconds until the block ends: train_face's
    stop_on_signal turns it into 'write the checkpoint and stop' (one that lands before its loop starts is repeated;
    outside that loop this block's own handler ignores it)."""

    def __init__(self, seconds: float, every: float = 3.0):
        self.seconds, self.every, self.done = seconds, every, threading.Event()

    def _run(self):
        if not self.done.wait(self.seconds):
            while not self.done.is_set():
                os.kill(os.getpid(), signal.SIGTERM)
                self.done.wait(self.every)

    def __enter__(self):
        self.old = signal.signal(signal.SIGTERM, lambda *a: None)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        signal.signal(signal.SIGTERM, self.old)


@torch.no_grad()
def latency(config: str, device: torch.device, reps: int, warmup: int) -> dict:
    """ms per face (median, min) of encode + generate at batch 1, random weights; fp32 and, on a GPU, fp16."""
    from .deepfacedrawing import DeepFaceDrawing, count_parameters, get_config
    cfg = get_config(config)
    with device:  # built (and initialised) on the device: the official config holds 2.2 GB of weights
        model = DeepFaceDrawing(cfg).eval()
        x = torch.rand(1, 1, cfg.canvas, cfg.canvas) * 2 - 1
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = {"canvas": cfg.canvas, "parameters": count_parameters(model)}
    for dtype in (torch.float32, torch.float16) if device.type == "cuda" else (torch.float32,):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            times = []
            for i in range(warmup + reps):
                sync()
                t = time.perf_counter()
                model.generate(model.encode(x))
                sync()
                times.append((time.perf_counter() - t) * 1000)
        t = np.array(times[warmup:])
        out["fp32" if dtype == torch.float32 else "fp16_autocast"] = {"median_ms": round(float(np.median(t)), 3),
                                                                      "min_ms": round(float(t.min()), 3)}
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def slim(src: str, dst: str) -> None:
    """A train_face checkpoint with fp16 weights and empty optimizer states (Adam restarts its moments)."""
    from .training import load_checkpoint, save_atomic
    ck = load_checkpoint(src)
    for k, v in list(ck.items()):
        if k.startswith("opt"):
            ck[k] = {"state": {}, "param_groups": v["param_groups"]}
        elif isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values()):
            ck[k] = half(v)
    save_atomic(ck, dst)


def collect(state_dir: str, out: str, stage1_ran: bool, summary: dict) -> None:
    """Copy back at most BACK_FILES files of at most BACK_SIZE each, most wanted first."""
    os.makedirs(out, exist_ok=True)
    for name in ("stage2.pt",) + (("stage1.pt",) if stage1_ran else ()):
        if os.path.isfile(os.path.join(state_dir, name)):
            slim(os.path.join(state_dir, name), os.path.join(out, name))
    grids = sorted(glob.glob(os.path.join(state_dir, "samples", "*.png")))
    wanted = ["latency.json", "face_lite.safetensors", "stage2.pt", "stage1.pt"]
    copies = [os.path.join(state_dir, n) for n in ("log.txt", "log_stage2.tsv")] + grids[-1:] + \
        [os.path.join(state_dir, "log_stage1.tsv")]
    have = [n for n in wanted if os.path.isfile(os.path.join(out, n))]
    for src in copies:
        if os.path.isfile(src) and len(have) < BACK_FILES - 1:  # one place for summary.json
            shutil.copy(src, os.path.join(out, os.path.basename(src)))
            have.append(os.path.basename(src))
    for n in list(have):
        if os.path.getsize(os.path.join(out, n)) > BACK_SIZE:
            os.remove(os.path.join(out, n))
            have.remove(n)
            summary["notes"].append(f"{n} is over {BACK_SIZE // MIB} MiB: not sent back")
    for n in os.listdir(out):  # anything else (a stray .tmp) would not come back either
        if n not in have and n != "summary.json":
            os.remove(os.path.join(out, n))
    summary["files"] = sorted(have + ["summary.json"])
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


def train(args, extra: list) -> int:
    from . import train_face
    t_start = time.monotonic()
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    oneshot = os.path.abspath(args.oneshot)
    with open(os.path.join(oneshot, "index.json")) as f:
        index = json.load(f)
    summary = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
               "prepared": index["notes"], "notes": []}
    log = lambda msg: (print(f"[oneshot] {msg}", flush=True), summary["notes"].append(msg))  # noqa: E731
    for n in index["notes"]:
        print(f"[oneshot] prepared: {n}", flush=True)
    work = args.work or tempfile.mkdtemp(prefix="oneshot-", dir="/tmp")
    pack_root, state_dir, out = os.path.join(work, "pack"), os.path.join(work, "state"), os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    sys.path[:0] = sorted(glob.glob(os.path.join(oneshot, "wheels", "*.whl")))  # pure-Python wheels import as zips
    try:
        import pytorch_msssim  # noqa: F401
        ssim = True
    except ImportError:
        ssim = False
        log("pytorch_msssim is missing: no SSIM loss")
    perceptual = restore_vgg(oneshot, index, os.path.join(work, "cache"))
    if not perceptual:
        log("no HED VGG16 convs for train_face's perceptual loss: trained without it")
    pack = unpack(oneshot, index, pack_root)
    log(f"unpacked {len(pack.items)} photos, {len(pack.sketch_of)} sketches into {pack_root} "
        f"({time.monotonic() - t_start:.0f} s)")
    restore_state(oneshot, index["state"], state_dir)
    stage1_ran = False
    try:
        lat = {"what": "encode + generate, batch 1, random weights, after warm-up (no feature-bank projection)",
               "device": summary["device"]}
        for name in args.latency_configs.split(","):
            try:
                lat[name] = latency(name, device, args.latency_reps, args.latency_warmup)
                log(f"latency {name}: {lat[name]}")
            except Exception as e:  # noqa: BLE001 -- the training matters more
                lat[name] = {"error": repr(e)}
                log(f"latency {name} failed: {e!r}")
        with open(os.path.join(out, "latency.json"), "w") as f:
            json.dump(lat, f, indent=1)
        threads = str(args.threads or (8 if device.type == "cuda" else 1))
        common = ["--data", pack_root, "--out", state_dir, "--device", device.type, "--threads", threads,
                  "--batch", str(args.batch), "--log-every", str(args.log_every), "--sample-every",
                  str(args.sample_every), "--checkpoint-s", "120", "--resume"]
        t_train, seconds = time.monotonic(), args.minutes * 60
        if index["state"] is None:
            config = args.config
            with Alarm(seconds * args.stage1_share):
                train_face.main(common + ["--config", config, "--stage", "1", "--steps", str(args.steps or 3000)])
            stage1_ran = True
            start2 = 0
        else:
            config = index["state"]["config"]
            start2 = index["state"]["stage2_step"] or 0
        left = seconds - (time.monotonic() - t_train)
        recipe = ["--gan-weight", "0", "--perceptual", "1", "--ssim-weight", "2"]  # README's first phase
        forced = (["--perceptual", "0"] if not perceptual else []) + (["--ssim-weight", "0"] if not ssim else [])
        with Alarm(max(left, 1.0)):
            train_face.main(common + ["--config", config, "--stage", "2",
                                      "--steps", str(start2 + (args.steps or 10 ** 8))] + recipe + extra + forced)
        summary["train_s"] = round(time.monotonic() - t_train, 1)
        train_face.main(["--data", pack_root, "--out", state_dir, "--config", config, "--device", device.type,
                         "--export", os.path.join(out, "face_lite.safetensors")])
        from .training import load_checkpoint
        summary["steps"] = {f"stage{i}": load_checkpoint(os.path.join(state_dir, f"stage{i}.pt"))["step"]
                            for i in (1, 2) if os.path.isfile(os.path.join(state_dir, f"stage{i}.pt"))}
        summary["stage2_from_step"] = start2
    finally:
        summary["wall_s"] = round(time.monotonic() - t_start, 1)
        collect(state_dir, out, stage1_ran, summary)
        print(f"[oneshot] back in {out}: {summary['files']} ({summary['wall_s']} s)", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(prog="python -m facesketch.models.gpu_oneshot", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="here: pack data, state and what the device lacks into --out")
    p.add_argument("--data", required=True, help="face pack (models/data/face_pack.py); its train split is used")
    p.add_argument("--state", help="training state directory (read only): stage1.pt, stage2.pt")
    p.add_argument("--out", default=os.path.join(REPO, ".oneshot"), help="a git-ignored folder inside the repo")
    p.add_argument("--budget-mb", default="auto", help="MiB for --out, or auto: 64 MiB - working tree - margin")
    p.add_argument("--margin-mb", type=float, default=1.0)
    p.add_argument("--minutes", type=float, default=8.0, help="training minutes, for the printed run call")
    p.add_argument("--export-file", default=TRACKED_EXPORT, help="the tracked export the state may travel inside")
    p.add_argument("--vgg", default=None, help="HED VGG16 safetensors (default: models.vgg16_hed.default_path())")
    p.add_argument("--no-vgg", action="store_true", help="no perceptual loss on the device; room for photos")
    p.add_argument("--no-wheel", action="store_true", help="do not pip download pytorch-msssim")
    p.add_argument("--photo-quality", type=int, default=85, help="JPEG quality of the photos")
    p.add_argument("--sketch-quality", type=int, default=90, help="WebP quality of the sketches (100: lossless)")
    p.add_argument("--max-sketches", type=int, default=0, help="at most this many sketches a photo (0: all)")
    t = sub.add_parser("train", help="there: unpack, latency, train for --minutes, export, copy back")
    t.add_argument("--oneshot", default=".oneshot")
    t.add_argument("--out", required=True, help="where the files to send back go ($OUT)")
    t.add_argument("--minutes", type=float, default=8.0, help="training wall time (both stages together)")
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--steps", type=int, default=None, help="at most this many steps a stage (default: the time)")
    t.add_argument("--config", default="lite2", help="stage 1 from scratch: the config")
    t.add_argument("--stage1-share", type=float, default=0.3, help="of --minutes, for stage 1 when no state came")
    t.add_argument("--threads", type=int, default=None, help="CPU threads (default: 8 with a GPU, else 1)")
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--sample-every", type=int, default=250)
    t.add_argument("--latency-configs", default="official,lite2")
    t.add_argument("--latency-reps", type=int, default=20)
    t.add_argument("--latency-warmup", type=int, default=5)
    t.add_argument("--work", default=None, help="scratch folder (default: a new one under /tmp)")
    args = ap.parse_args(argv)
    if extra and args.cmd != "train":
        ap.error("options after -- go to train_face, with train only")
    return prepare(args) if args.cmd == "prepare" else train(args, extra)


if __name__ == "__main__":
    sys.exit(main())
