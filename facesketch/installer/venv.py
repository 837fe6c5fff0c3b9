"""A virtual environment for the backend (or for data preparation): the right torch build, then
`pip install -r <requirements>`, then `pip install --no-deps -e <repo>` (the project itself, editable:
the `facesketch` command and `import facesketch.backend` from any folder). Quick when nothing changed."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Optional

from . import REPO, InstallError
from .ops import Ops, atomic_write
from .requirements import pins, probe_venv, read_requirements, requirement_files, unmet_requirements

REQUIREMENTS = os.path.join(REPO, "requirements.txt")
REQUIREMENTS_TEST = os.path.join(REPO, "requirements-test.txt")
REQUIREMENTS_RAY = os.path.join(REPO, "requirements-ray.txt")  # --ray: the backend plus Ray, for serve --ray
REQUIREMENTS_PREP = os.path.join(REPO, "models", "data", "requirements-prep.txt")
PYPROJECT = os.path.join(REPO, "pyproject.toml")
STAMP = ".facesketch-stamp.json"
OLD_PTH = "facesketch.pth"  # what installs before the editable install put into site-packages


def nvidia_driver_present() -> bool:
    """An NVIDIA driver is loaded: /proc/driver/nvidia exists or nvidia-smi answers."""
    if os.path.exists("/proc/driver/nvidia/version"):
        return True
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def venv_python(venv: str) -> str:
    if os.name == "nt":
        return os.path.join(venv, "Scripts", "python.exe")
    return os.path.join(venv, "bin", "python")


def venv_script(venv: str, name: str = "facesketch", windows: Optional[bool] = None) -> str:
    """A console script of the venv: <venv>/bin/facesketch, on Windows <venv>\\Scripts\\facesketch.exe."""
    if os.name == "nt" if windows is None else windows:
        return os.path.join(venv, "Scripts", name + ".exe")
    return os.path.join(venv, "bin", name)


def python_runs(py: str) -> bool:
    try:
        return subprocess.run([py, "-c", "import sys"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def torch_install_attempts(version: str, cuda: bool, sys_platform: Optional[str] = None) -> list:
    """[(requirement, extra pip args, extra environment)] to try in order for the torch build we want.

    Linux without an NVIDIA driver: the CPU build (`+cpu`; a local wheel through pip's find-links when
    the machine has one, else PyTorch's CPU index). Linux with a driver: PyPI's default Linux wheel,
    which is the CUDA build; local find-links are switched off so a CPU wheel cannot win on version.
    macOS and Windows: PyPI's wheel (CPU/MPS)."""
    sp = sys_platform or sys.platform
    base = version.split("+")[0]
    if sp.startswith("linux"):
        if cuda:
            return [(f"torch=={base}", [], {"PIP_FIND_LINKS": ""})]
        return [(f"torch=={base}+cpu", [], {}),
                (f"torch=={base}+cpu", ["--extra-index-url", "https://download.pytorch.org/whl/cpu",
                                        "--retries", "1", "--timeout", "30"], {})]
    return [(f"torch=={base}", [], {})]


def editable_from_repo(info: dict, repo: str = REPO) -> bool:
    """The probed environment has facesketch installed editable from `repo` (pip's direct_url.json)."""
    try:
        d = json.loads(info.get("facesketch_url") or "")
        path = urllib.request.url2pathname(urllib.parse.urlparse(d["url"]).path)
        return bool(d.get("dir_info", {}).get("editable")) and os.path.realpath(path) == os.path.realpath(repo)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _stamp_key(req_file: str, cuda: bool, py_version: str) -> str:
    h = hashlib.sha256(f"cuda={cuda};python={py_version};repo={REPO}".encode())
    for p in requirement_files(req_file) + [PYPROJECT]:  # pyproject: the editable install's package map
        h.update(os.path.basename(p).encode())
        with open(p, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def _read_stamp(venv: str) -> dict:
    try:
        with open(os.path.join(venv, STAMP), encoding="utf-8") as fh:
            d = json.load(fh)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _pip(ops: Ops, py: str, *args, env: Optional[dict] = None, what: str = "") -> int:
    return ops.run([py, "-m", "pip", *args], env=env or None, what=what)


def ensure_venv(ops: Ops, venv: str, req_file: str, base_python: Optional[str] = None,
                cuda: Optional[bool] = None) -> str:
    """Make `venv` satisfy `req_file` and hold the project installed editable from this checkout;
    quickly when it already does. Returns the venv's python."""
    py = venv_python(venv)
    label = os.path.relpath(req_file, REPO)
    wanted = pins(req_file)
    cuda = nvidia_driver_present() if cuda is None else cuda
    ops.say(f"==> Python environment {venv} for {label}"
            + (" (NVIDIA driver found: CUDA build of torch)" if cuda and "torch" in wanted else ""))
    if os.path.exists(py) and not python_runs(py):
        ops.say(f"  {py} does not run (its Python moved or was removed); recreating the environment")
        ops.remove(venv)
    if not os.path.exists(py) or (ops.dry_run and not os.path.isdir(venv)):
        base = base_python or sys.executable
        if ops.run([base, "-m", "venv", venv], what="new virtual environment") != 0:
            raise InstallError(f"Could not create a virtual environment with {base}. On Debian/Ubuntu install "
                               f"the venv module: sudo apt-get install python3-venv")
    if ops.dry_run and not os.path.exists(py):
        for req, extra, env in (torch_install_attempts(wanted["torch"], cuda)[:1] if "torch" in wanted else []):
            _pip(ops, py, "install", req, *extra, env=env, what="torch build")
        _pip(ops, py, "install", "-r", req_file, what="requirements")
        _pip(ops, py, "install", "--no-deps", "-e", REPO, what="this project, editable")
        return py

    lines = read_requirements(req_file)
    info = probe_venv(py, lines)
    key = _stamp_key(req_file, cuda, info["version"])
    stamp = _read_stamp(venv)
    old_pth = os.path.join(info["purelib"], OLD_PTH)
    editable = editable_from_repo(info) and os.path.exists(venv_script(venv))
    if stamp.get(label) == key and editable and not os.path.lexists(old_pth):
        ops.say("  up to date (requirements unchanged since the last install)")
        return py

    missing = unmet_requirements(info, lines, cuda)
    if missing:
        ops.say("  to install: " + ", ".join(missing))
        if "torch" in wanted and any(m.startswith("torch==") for m in missing):
            _install_torch(ops, py, wanted["torch"], cuda)
        if _pip(ops, py, "install", "-r", req_file, what="requirements") != 0:
            raise InstallError(f"pip could not install {label} into {venv} (see pip's message above).")
    else:
        ops.say("  all requirements already satisfied")
    ops.remove(old_pth, why="left by an older install; the editable install replaces it")
    if not editable and _pip(ops, py, "install", "--no-deps", "-e", REPO, what="this project, editable") != 0:
        raise InstallError(f"pip could not install this checkout ({REPO}) into {venv} (see pip's message above; "
                           f"building it needs setuptools>=64 from PyPI or pip's find-links).")
    if not ops.dry_run:
        if missing or not editable:
            info = probe_venv(py, lines)
            still = [m for m in unmet_requirements(info, lines, cuda) if not m.endswith("(left to pip)")]
            if not editable_from_repo(info):
                still.append(f"facesketch installed editable from {REPO}")
            if still:
                raise InstallError(f"After pip install, {venv} still lacks: " + ", ".join(still))
        stamp[label] = key
        atomic_write(os.path.join(venv, STAMP), json.dumps(stamp, indent=1) + "\n")
    return py


def _install_torch(ops: Ops, py: str, version: str, cuda: bool) -> None:
    attempts = torch_install_attempts(version, cuda)
    for i, (req, extra, env) in enumerate(attempts):
        if _pip(ops, py, "install", req, *extra, env=env, what="torch " + ("CUDA build" if cuda else "CPU build")) == 0:
            return
        if i + 1 < len(attempts):
            ops.say("  not found there; trying the next source")
    pyv = probe_venv(py)["version"] if os.path.exists(py) else "?"
    raise InstallError(f"pip could not install {attempts[0][0]} for Python {pyv} (see pip's message above). "
                       f"If torch has no wheel for this Python, create the venv with another one: "
                       f"python3 install.py --venv-python /path/to/python3.11")


def check_venv(venv: str, req_file: str = REQUIREMENTS) -> tuple:
    """(problems, description) of the backend venv, for --check."""
    py = venv_python(venv)
    if not os.path.exists(py) or not python_runs(py):
        return [f"MISSING ({venv}); run python3 install.py"], venv
    lines = read_requirements(req_file)
    info = probe_venv(py, lines)
    problems = [m for m in unmet_requirements(info, lines, nvidia_driver_present()) if not m.endswith("(left to pip)")]
    script = venv_script(venv)
    if not editable_from_repo(info):
        problems.append(f"facesketch is not installed editable from {REPO}")
    if not os.path.exists(script):
        problems.append(f"console script {script} missing")
    if os.path.lexists(os.path.join(info["purelib"], OLD_PTH)):
        problems.append(f"an old {OLD_PTH} is still there")
    desc = f"{venv} (Python {info['version']}, torch {info['have'].get('torch', 'none')}; command {script})"
    return problems, desc
