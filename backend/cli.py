"""Command line: `facesketch serve | ping | keys | sketchify | face`."""
from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import sys

from facesketch_client import BackendError, Client, Image, protocol
from facesketch_client import settings as fs_settings

from . import __version__
from .service import DEFAULT_MAX_PIXELS, DEFAULT_QUEUE_SIZE, CurveConfig, Service

log = logging.getLogger("facesketch")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def setup_logging(level: str, to_file: bool = True) -> str | None:
    root = logging.getLogger("facesketch")
    root.setLevel(getattr(logging, level.upper()))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root.addHandler(console)
    if not to_file:
        return None
    folder = fs_settings.state_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "backend.log")
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=5 << 20, backupCount=3, encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the log file in %s (%s); logging to the console only", folder, exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    return path


def resolve_device(requested: str) -> str:
    try:
        import torch
    except ImportError:
        if requested == "cuda":
            raise SystemExit("--device cuda: PyTorch is not installed in this environment (run python3 install.py)")
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is usable here (PyTorch sees none); use --device cpu or auto")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def load_curve(keydir: str) -> CurveConfig:
    from . import keys

    try:
        public, secret, allow_list, warnings = keys.load_server(keydir)
    except keys.KeyDirError as exc:
        raise SystemExit(str(exc))
    for w in warnings:
        log.warning("%s", w)
    return CurveConfig(public, secret, allow_list)


def make_service(bind: str, device: str = "cpu", max_pixels: int = DEFAULT_MAX_PIXELS,
                 queue_size: int = DEFAULT_QUEUE_SIZE, curve: CurveConfig | None = None,
                 insecure: bool = False, ray: str | None = None, ray_actors: int | None = None) -> Service:
    from .engines import discover

    if ray is not None:  # jobs run on Ray actors; this process is the front end only (scale_out.py)
        from .scale_out import RayService

        return RayService(bind, discover(), ray_address=ray, actors=ray_actors, device=device,
                          max_pixels=max_pixels, queue_size=queue_size, curve=curve, insecure=insecure)
    return Service(bind, discover(), device=device, max_pixels=max_pixels, queue_size=queue_size, curve=curve,
                   insecure=insecure)


# -- serve ------------------------------------------------------------------------------------

def cmd_serve(args) -> int:
    logfile = setup_logging(args.log_level)
    # with --ray the cluster's machines decide (a GPU per actor where they have one), not this one
    device = args.device if args.ray is not None else resolve_device(args.device)
    curve = load_curve(args.curve) if args.curve else None
    try:
        service = make_service(args.bind, device, args.max_pixels, args.queue_size, curve, args.insecure,
                               args.ray, args.ray_actors)
        service.start()
        device = service.device
    except (ValueError, RuntimeError) as exc:  # RuntimeError: --ray without Ray, a cluster without GPUs
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # zmq.ZMQError: address in use and friends
        print(f"error: cannot listen on {args.bind}: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service._stop.set())
    # One line on stdout when ready: the plug-ins' launcher and the tests wait for it.
    print(f"facesketch backend {__version__} ready on {service.endpoint} (device {device}"
          f"{', CURVE' if curve else ''}; log: {logfile or 'console only'})", flush=True)
    try:
        service.wait()
    finally:
        service.stop()
        log.info("stopped")
    return 0


# -- keys -------------------------------------------------------------------------------------

def cmd_keys(args) -> int:
    from . import keys

    try:
        moved = keys.migrate(args.dir)
        made = keys.make(args.dir, args.client)
    except keys.KeyDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in moved:
        print(f"moved {line}")
    values = {k: made[k] for k in ("server_public_key", "client_public_key", "client_secret_key")}
    if args.write_settings:
        s = fs_settings.load()
        for k, v in values.items():
            setattr(s, k, v)
        path = fs_settings.save(s)
        print(f"wrote the keys into {path}")
    print(f"Server key pair in {os.path.join(args.dir, keys.PRIVATE_DIR)} (only the backend reads it); client "
          f"'{args.client}' is on the allow-list ({os.path.join(args.dir, keys.PUBLIC_DIR)}).")
    print(f"Client '{args.client}' key pair: {made['client_dir']} (copy it to that machine, then delete it here).")
    print(f"Start the backend with: facesketch serve --bind tcp://0.0.0.0:{protocol.DEFAULT_PORT} --curve {args.dir}")
    print("Put these in the facesketch settings of the client machine (Backend settings dialog):")
    for k, v in values.items():
        print(f"  {k}: {v}")
    return 0


# -- ping -------------------------------------------------------------------------------------

def _client(args) -> Client:
    s = fs_settings.load()
    overrides = {"address": args.server} if args.server else {}
    if args.timeout:
        overrides["timeout_s"] = args.timeout
    return Client.from_settings(s, **overrides)


def describe_caps(caps: dict) -> str:
    lines = [f"facesketch backend {caps.get('version')} (protocol {caps.get('protocol')}) on {caps.get('device')}, "
             f"max {caps.get('max_pixels', 0) / 1e6:.0f} megapixels"]
    for engine in caps.get("engines", []):
        state = "ready" if engine["ready"] else f"NOT READY: {engine['reason']}"
        lines.append(f"  {engine['name']}: {engine['summary']} [{state}]")
        for p in engine["params"]:
            extra = ""
            if p.get("choices"):
                extra = f" one of {', '.join(p['choices'])}"
            elif "min" in p or "max" in p:
                extra = f" in [{p.get('min', '')}, {p.get('max', '')}]"
            lines.append(f"      {p['name']} ({p['kind']}{extra}, default {p['default']!r}): {p['help']}")
        lines.append(f"      outputs: {', '.join(engine['outputs'])}")
    return "\n".join(lines)


def cmd_ping(args) -> int:
    try:
        client = _client(args)
    except BackendError as exc:  # an address or key that cannot be used, in words
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with client:
        try:
            caps = client.hello()
        except BackendError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(caps, indent=2) if args.json else describe_caps(caps))
    return 0


# -- batch: sketchify / face ------------------------------------------------------------------

def read_image(path: str) -> Image:
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        im = im.convert("RGBA")
        return Image(im.width, im.height, "RGBA8", im.tobytes())


def write_image(img: Image, path: str) -> None:
    from PIL import Image as PILImage

    mode = {"RGBA8": "RGBA", "RGB8": "RGB", "GRAY8": "L"}[img.format]
    pil = PILImage.frombuffer(mode, (img.width, img.height), img.tobytes(), "raw", mode, 0, 1)
    if path.lower().endswith((".jpg", ".jpeg")):
        pil = pil.convert("RGB")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pil.save(path)


def _pairs(src: str, dst: str, suffix: str) -> list[tuple[str, str]]:
    if os.path.isdir(src):
        names = sorted(n for n in os.listdir(src) if n.lower().endswith(IMAGE_SUFFIXES))
        if not names:
            raise SystemExit(f"no images in {src}")
        return [(os.path.join(src, n), os.path.join(dst, os.path.splitext(n)[0] + suffix)) for n in names]
    if not os.path.isfile(src):
        raise SystemExit(f"{src}: no such file or folder")
    return [(src, dst)]


def run_batch(args, engine: str, params: dict, output: str, inputs_extra=None) -> int:
    """Run `engine` over one file or a folder, in-process or through `--server`.

    In-process mode starts the same Service on an inproc address, so both modes share every check
    and conversion and give identical pixels.
    """
    from tqdm import tqdm

    pairs = _pairs(args.input, args.output, ".png")
    service = None
    if args.server:
        try:
            client = _client(args)
        except BackendError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        setup_logging(args.log_level, to_file=False)
        service = make_service("inproc://facesketch-cli", resolve_device(args.device)).start()
        # inproc needs one shared context; an hour is the in-process timeout (it is all local work)
        client = Client("inproc://facesketch-cli", timeout_s=args.timeout or 3600, context=service.ctx)
    failures = 0
    try:
        bar = tqdm(pairs, unit="image", disable=len(pairs) == 1, file=sys.stderr)
        for src, dst in bar:
            images = {"image": read_image(src)}
            if inputs_extra:
                images.update({k: read_image(v) for k, v in inputs_extra.items()})
            try:
                out = client.run(engine, images, params, outputs=[output], reply_format="RGBA8")
            except BackendError as exc:
                failures += 1
                print(f"error: {src}: {exc}", file=sys.stderr)
                if exc.code in (protocol.ErrorCode.UNREACHABLE, protocol.ErrorCode.NOT_READY):
                    break
                continue
            write_image(out[output], dst)
    finally:
        client.close()
        if service is not None:
            service.stop()
    return 1 if failures else 0


def _parse_style(value: str):
    """'2' -> ('2', None); '0.5,0.5,0' -> ('mix', [0.5, 0.5, 0.0])."""
    if "," in value:
        try:
            return "mix", [float(v) for v in value.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"--style: '{value}' is not three comma-separated numbers")
    return value, None


def cmd_sketchify(args) -> int:
    style, mix = _parse_style(args.style)
    params = {"style": style, "strength": args.strength}
    if mix is not None:
        params["style_mix"] = mix
    extra = {"depth": args.depth} if args.depth else None
    return run_batch(args, "sketch", params, args.output_kind, extra)


def cmd_face(args) -> int:
    params = {"gender": args.gender, "master": args.blend, "k": args.k, "align": args.align, "outside": args.outside}
    for part in ("left_eye", "right_eye", "nose", "mouth", "remainder"):
        value = getattr(args, f"blend_{part}")
        if value is not None:
            params[f"blend_{part}"] = value
    return run_batch(args, "face", params, args.output_kind)


# -- parser -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facesketch", description="facesketch backend")
    p.add_argument("--version", action="version", version=f"facesketch {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the service the GIMP and Krita plug-ins talk to")
    s.add_argument("--bind", default=protocol.DEFAULT_ADDRESS,
                   help=f"ZeroMQ address to listen on (default {protocol.DEFAULT_ADDRESS})")
    s.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    s.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest image accepted (pixels)")
    s.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE,
                   help="jobs that may wait; more get a 'busy' reply")
    s.add_argument("--curve", metavar="KEYDIR",
                   help="require CURVE encryption with the server key in KEYDIR/private_keys; allow only the "
                        "clients whose public keys are in KEYDIR/public_keys (made by 'facesketch keys')")
    s.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --bind without encryption (trusted networks only)")
    s.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run jobs on Ray actors (one per GPU) and keep only the ZeroMQ front end here; ADDRESS is "
                        "the Ray cluster (auto, HOST:6379, ray://HOST:10001); without it a local Ray instance "
                        "is started. Needs 'pip install ray'")
    s.add_argument("--ray-actors", type=int, metavar="N",
                   help="with --ray: how many actors (default: one per GPU in the cluster, else 1)")
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    s.set_defaults(func=cmd_serve)

    k = sub.add_parser("keys", help="make CURVE key pairs for a backend reachable over the network")
    k.add_argument("--dir", default=os.path.join(fs_settings.config_dir(), "keys"))
    k.add_argument("--client", default="client", help="name of the client key pair to add to the allow-list")
    k.add_argument("--write-settings", action="store_true", help="also put the keys into this machine's settings")
    k.set_defaults(func=cmd_keys)

    g = sub.add_parser("ping", help="ask a running backend what it offers")
    g.add_argument("--server", help="backend address (default: from the settings file)")
    g.add_argument("--timeout", type=float)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_ping)

    def batch(name, help_text, func, default_output):
        b = sub.add_parser(name, help=help_text)
        b.add_argument("input", help="image file or folder")
        b.add_argument("output", help="output file, or folder when the input is a folder")
        b.add_argument("--server", help="use a running backend at this address instead of running in-process")
        b.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
        b.add_argument("--timeout", type=float)
        b.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
        b.add_argument("--output-kind", default=default_output, help=argparse.SUPPRESS)
        b.set_defaults(func=func)
        return b

    sk = batch("sketchify", "photo -> pencil sketch", cmd_sketchify, "sketch")
    sk.add_argument("--style", default="1", help="1, 2, 3, or a mix as three weights like 0.5,0.5,0")
    sk.add_argument("--strength", type=float, default=1.0, help="1 = pure sketch, less blends over the photo")
    sk.add_argument("--depth", help="a depth map image to use instead of the built-in depth estimate")

    fa = batch("face", "sketch -> face", cmd_face, "face")
    fa.description = ("Sketch -> face. The face is found anywhere in the drawing (at any size and a small tilt) and "
                      "the result is put where it was drawn; with --align template the whole picture is taken as "
                      "the face template instead (eye centres at about 34%% and 62%% of the width and 43%% of the "
                      "height, the mouth at about 77%% of the height).")
    fa.add_argument("--align", choices=("auto", "template"), default="auto",
                    help="auto: find the drawn face; template: the picture is the face template")
    fa.add_argument("--outside", choices=("transparent", "paper"), default="transparent",
                    help="with --align auto, what surrounds the face in the result")
    fa.add_argument("--gender", choices=("female", "male"), default="female")
    fa.add_argument("--blend", type=float, default=1.0,
                    help="master blend: 0 follows your lines, 1 gives the most plausible face")
    fa.add_argument("--k", type=int, default=10, help="nearest neighbours used by the projection")
    for part in ("left_eye", "right_eye", "nose", "mouth", "remainder"):
        fa.add_argument(f"--blend-{part.replace('_', '-')}", dest=f"blend_{part}", type=float)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
