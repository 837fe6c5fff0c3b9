"""pyzmq and msgpack wheels for the hosts' own Python: fetched once per vendor tag into a cache with
`pip download --only-binary=:all: --python-version X.Y ...` (never pip-installed into a host's Python)
and unpacked into `<plug-in folder>/_vendor/<tag>/`, where facesketch_client/vendored.py finds them."""
from __future__ import annotations

import os
import platform as _platform
import re
import subprocess
import sys
import zipfile
from typing import Iterable, Optional

from . import REPO, InstallError, client_module
from .ops import Ops, rm
from .requirements import pins
from .venv import REQUIREMENTS, venv_python

vendored = client_module("vendored")
VENDORED_PACKAGES = ("pyzmq", "msgpack")  # what the host side needs; the pins come from requirements.txt


def python_tags_for(versions: Iterable[str], platform_keys: Optional[Iterable[str]] = None) -> list:
    """Vendor tags (as vendored.current_tag() spells them) for Python versions like '3.11' or '3.13t'."""
    keys = list(platform_keys or [vendored.platform_key()])
    out = []
    for v in versions:
        v = v.strip()
        ft = v.endswith("t")
        v = v.rstrip("t")
        if not re.fullmatch(r"3\.\d+", v):
            raise InstallError(f"not a Python version: {v!r} (expected something like 3.11)")
        for k in keys:
            t = vendored.tag_for(v, k, ft)
            if t not in out:
                out.append(t)
    return out




def wheel_cache_dir() -> str:
    """~/.cache/facesketch/wheels of the real user (also with --home: tests share the cache)."""
    env = os.environ.get("FACESKETCH_WHEEL_CACHE")
    if env:
        return os.path.abspath(env)
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(base, "facesketch", "cache", "wheels")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "facesketch", "wheels")


def _glibc_minor() -> int:
    try:
        v = os.confstr("CS_GNU_LIBC_VERSION") or ""  # 'glibc 2.36'
        m = re.search(r"2\.(\d+)", v)
        return int(m.group(1)) if m else 28
    except (ValueError, OSError, AttributeError):
        return 28


def pip_platforms(plat_key: str) -> list:
    """pip --platform values that cover a vendor platform key."""
    if plat_key.startswith("linux_"):
        arch = plat_key[len("linux_"):]
        top = max(_glibc_minor(), 17)
        out = [f"manylinux_2_{k}_{arch}" for k in range(top, 16, -1)] + [f"manylinux2014_{arch}"]
        if arch in ("x86_64", "i686"):
            out += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
        return out
    if plat_key.startswith("macosx_"):
        arch = plat_key[len("macosx_"):]
        mac = _platform.mac_ver()[0] if sys.platform == "darwin" else ""
        major = int(mac.split(".")[0]) if mac else 14
        return [f"macosx_{max(major, 11)}_0_{arch}"]  # pip expands to older macOS and universal2
    return [plat_key]


def parse_tag(tag: str) -> tuple:
    """'cp311-linux_x86_64' -> ('3.11', False, 'linux_x86_64')."""
    m = re.fullmatch(r"cp3(\d+)(t?)-(.+)", tag)
    if not m:
        raise InstallError(f"not a vendor tag: {tag!r}")
    return f"3.{m.group(1)}", bool(m.group(2)), m.group(3)


def _pip_python(venv: Optional[str] = None) -> str:
    """An interpreter with pip, to run `pip download` (never a host's Python)."""
    candidates = []
    if venv:
        candidates.append(venv_python(venv))
    candidates.append(venv_python(os.path.join(REPO, ".venv")))
    candidates.append(sys.executable)
    for py in candidates:
        if os.path.exists(py) and subprocess.run([py, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return py
    raise InstallError("No Python with pip found to download the plug-ins' wheels. Run install.py without "
                       "--no-venv (the backend venv has pip) or install pip (sudo apt-get install python3-pip).")


def _cached_wheels(folder: str, wanted: dict) -> Optional[list]:
    """The cached wheel files for every pinned package, or None if one is missing."""
    files = []
    for name, version in wanted.items():
        prefix = f"{name.replace('-', '_').lower()}-{version}-"
        hits = [f for f in (os.listdir(folder) if os.path.isdir(folder) else [])
                if f.lower().startswith(prefix) and f.endswith(".whl")]
        if not hits:
            return None
        files.append(os.path.join(folder, sorted(hits)[-1]))
    return files


def vendored_pins() -> dict:
    allp = pins(REQUIREMENTS)
    missing = [p for p in VENDORED_PACKAGES if p not in allp]
    if missing:
        raise InstallError(f"requirements.txt does not pin {', '.join(missing)}")
    return {p: allp[p] for p in VENDORED_PACKAGES}


def fetch_wheels(ops: Ops, tag: str, venv: Optional[str] = None, cache: Optional[str] = None) -> list:
    """Wheel files of pyzmq and msgpack for vendor tag `tag`, from the cache or `pip download`."""
    wanted = vendored_pins()
    folder = os.path.join(cache or wheel_cache_dir(), tag)
    files = _cached_wheels(folder, wanted)
    if files:
        return files
    version, ft, plat_key = parse_tag(tag)
    nodot = version.replace(".", "")
    cmd = ["download", "--only-binary=:all:", "--no-deps", "--python-version", version,
           "--implementation", "cp", "--abi", f"cp{nodot}{'t' if ft else ''}"]
    for p in pip_platforms(plat_key):
        cmd += ["--platform", p]
    cmd += ["--dest", folder] + [f"{n}=={v}" for n, v in wanted.items()]
    if ops.dry_run:
        ops.act(f"run <python> -m pip {' '.join(cmd)}   (wheels for {tag})")
        return []
    os.makedirs(folder, exist_ok=True)
    py = _pip_python(venv)
    ops.say(f"  downloading {', '.join(f'{n}=={v}' for n, v in wanted.items())} for {tag}")
    r = subprocess.run([py, "-m", "pip", *cmd], capture_output=True, text=True)
    files = _cached_wheels(folder, wanted)
    if r.returncode != 0 or not files:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-8:])
        raise InstallError(f"Could not download the wheels for {tag} (is PyPI reachable?). pip said:\n{tail}")
    return files


def _safe_extract(whl: str, dest: str) -> None:
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            target = os.path.realpath(os.path.join(dest, info.filename))
            if not target.startswith(os.path.realpath(dest) + os.sep):
                raise InstallError(f"{whl} holds an unsafe path: {info.filename}")
        z.extractall(dest)


def vendor_wheels(dest: str, python_tags: Iterable[str], ops: Optional[Ops] = None,
                  venv: Optional[str] = None, cache: Optional[str] = None) -> list:
    """Unpack pyzmq and msgpack wheels for each tag into `<dest>/_vendor/<tag>/` (dest = the plug-in
    folder that holds facesketch_client). Tags no longer wanted are removed. Returns the tags."""
    ops = ops or Ops(verbose=False)
    tags = list(python_tags)
    root = os.path.join(dest, vendored.VENDOR_DIR)
    ops.mkdir(root)
    for tag in tags:
        files = fetch_wheels(ops, tag, venv, cache)
        final = os.path.join(root, tag)
        if ops.act(f"unpack {', '.join(os.path.basename(f) for f in files) or 'wheels'} into {final}"):
            tmp = final + ".new"
            rm(tmp)
            os.makedirs(tmp)
            for f in files:
                _safe_extract(f, tmp)
            rm(final)
            os.replace(tmp, final)
    if os.path.isdir(root):
        for old in os.listdir(root):
            if old not in tags:
                ops.remove(os.path.join(root, old))
    return tags
