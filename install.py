#!/usr/bin/env python3
"""One-command setup for facesketch: the backend's virtual environment, the GIMP 3 and Krita 5
plug-ins (with pyzmq/msgpack wheels for each host's own Python), and the shared settings file.

    python3 install.py                 set up everything (backend venv, plug-ins in every host found, settings)
    python3 install.py --serve         ... then run the backend in the foreground (Ctrl+C stops it)
    python3 install.py --test          ... with the test requirements, then run the whole test suite
    python3 install.py --check         report what is installed where; exit 1 when something is missing
    python3 install.py --dry-run       print every action, change nothing
    python3 install.py --uninstall     remove the plug-ins (add --purge to remove settings and venvs too)

Standard library only; runs with any python3 >= 3.10. It never pip-installs into a host's Python:
hosts get unpacked wheels in `<plug-in folder>/_vendor/<tag>/` (see plugin/facesketch_client/vendored.py).

Installed layout (the plug-ins rely on it):
  GIMP   <plug-ins>/facesketch/facesketch.py (executable, LF, python3 shebang), its helper modules,
         facesketch_client/, _vendor/<tag>/, .facesketch-install.json
  Krita  <pykrita>/facesketch.desktop and <pykrita>/facesketch/ (the package) holding facesketch_client/,
         _vendor/<tag>/ and .facesketch-install.json; the package puts its own folder on sys.path before
         importing facesketch_client. kritarc gets `[python] enable_facesketch=true`.

Host tests use the functions here directly, e.g.
    install_gimp_plugin("<chroot>/root/.config/GIMP/3.0/plug-ins", python_tags_for(["3.13"]))
    install_krita_plugin("<home>/.local/share/krita/pykrita", python_tags_for(["3.11"]), "<home>/.config/kritarc")
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import importlib.util
import json
import os
import platform as _platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import Iterable, Optional

if sys.version_info < (3, 10):
    sys.exit("install.py needs Python 3.10 or newer (this is %d.%d)." % sys.version_info[:2])

REPO = os.path.dirname(os.path.abspath(__file__))
PLUGIN_SRC = os.path.join(REPO, "plugin")
CLIENT_SRC = os.path.join(PLUGIN_SRC, "facesketch_client")
GIMP_SRC = os.path.join(PLUGIN_SRC, "gimp", "facesketch")
KRITA_SRC = os.path.join(PLUGIN_SRC, "krita")
NAME = "facesketch"
MANIFEST = ".facesketch-install.json"
REQUIREMENTS = os.path.join(REPO, "requirements.txt")
REQUIREMENTS_TEST = os.path.join(REPO, "requirements-test.txt")
REQUIREMENTS_PREP = os.path.join(REPO, "models", "data", "requirements-prep.txt")
TEST_APT_PACKAGES = os.path.join(REPO, "tests", "apt-packages.txt")
VENDORED_PACKAGES = ("pyzmq", "msgpack")  # what the host side needs; pins come from requirements.txt
STAMP = ".facesketch-stamp.json"
PTH = "facesketch.pth"
FORBIDDEN = ("torchvision",)  # never in our venvs (pulls a second torch build, GBs)
GIMP_SHEBANG = "#!/usr/bin/env python3"


def _load_module(name: str, path: str):
    """Import one of the client's pure-stdlib modules without running facesketch_client/__init__
    (which needs pyzmq, which this python3 may not have)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look the module up while building the class
    spec.loader.exec_module(mod)
    return mod


fs_settings = _load_module("_facesketch_settings", os.path.join(CLIENT_SRC, "settings.py"))
vendored = _load_module("_facesketch_vendored", os.path.join(CLIENT_SRC, "vendored.py"))


class InstallError(Exception):
    """A problem the user can act on; main() prints it without a traceback."""


# ------------------------------------------------------------------------------------------------
# Actions: every change goes through Ops so that --dry-run prints it instead.

class Ops:
    def __init__(self, dry_run: bool = False, verbose: bool = True, out=None):
        self.dry_run = dry_run
        self.verbose = verbose
        self.out = out or sys.stdout

    def say(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=self.out, flush=True)

    def act(self, msg: str) -> bool:
        """Announce an action; True when it should really happen."""
        self.say(("[dry-run] would " if self.dry_run else "  ") + msg)
        return not self.dry_run

    def mkdir(self, path: str) -> None:
        if not os.path.isdir(path) and self.act(f"create folder {path}"):
            os.makedirs(path, exist_ok=True)

    def write_text(self, path: str, text: str, mode: Optional[int] = None) -> None:
        if self.act(f"write {path}"):
            _atomic_write(path, text, mode)

    def remove(self, path: str) -> None:
        if not os.path.lexists(path):
            return
        if self.act(f"remove {path}"):
            _rm(path)

    def run(self, cmd: list, env: Optional[dict] = None, cwd: Optional[str] = None, what: str = "") -> int:
        shown = " ".join(_quote(c) for c in cmd)
        if env:
            shown = " ".join(f"{k}={_quote(v)}" for k, v in env.items()) + " " + shown
        if not self.act(f"run {shown}" + (f"   ({what})" if what else "")):
            return 0
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.call(cmd, env=full_env, cwd=cwd)


def _quote(s: str) -> str:
    return s if re.fullmatch(r"[\w@%+=:,./-]+", s or "x") else "'" + s.replace("'", "'\\''") + "'"


def _atomic_write(path: str, text: str, mode: Optional[int] = None) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + "-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
    except BaseException:
        _rm(tmp)
        raise


def _rm(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


# ------------------------------------------------------------------------------------------------
# Requirements, pins, stamps

def read_requirements(path: str, _seen: Optional[set] = None) -> list:
    """Requirement lines of a requirements file, following `-r other.txt`."""
    _seen = _seen or set()
    path = os.path.abspath(path)
    if path in _seen:
        return []
    _seen.add(path)
    lines = []
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith(("-r ", "--requirement ")):
                lines += read_requirements(os.path.join(os.path.dirname(path), line.split(None, 1)[1]), _seen)
            elif not line.startswith("-"):
                lines.append(line)
    return lines


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: str) -> dict:
    """{canonical name: version} for every `name==version` line (following -r)."""
    out = {}
    for line in read_requirements(path):
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*==\s*([A-Za-z0-9.+!_-]+)\s*(?:;.*)?", line)
        if m:
            out[_canon(m.group(1))] = m.group(2)
    return out


def _files_digest(paths: Iterable[str], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(os.path.basename(p).encode())
        with open(p, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def _requirement_files(path: str, _seen: Optional[set] = None) -> list:
    """The file and every file it includes with -r (for the stamp hash)."""
    _seen = _seen or []
    path = os.path.abspath(path)
    if path in _seen:
        return _seen
    _seen.append(path)
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if line.startswith(("-r ", "--requirement ")):
                _requirement_files(os.path.join(os.path.dirname(path), line.split(None, 1)[1]), _seen)
    return _seen


# ------------------------------------------------------------------------------------------------
# The backend virtual environment

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


def _python_runs(py: str) -> bool:
    try:
        return subprocess.run([py, "-c", "import sys"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


_PROBE = r"""
import importlib.metadata as md, json, sys, sysconfig
want = json.loads(sys.argv[1])
have = {}
for d in md.distributions():
    n = d.metadata["Name"]
    if n:
        have[n.lower().replace("_", "-").replace(".", "-")] = d.version
print(json.dumps({"have": have, "purelib": sysconfig.get_paths()["purelib"],
                  "version": "%d.%d" % sys.version_info[:2]}))
"""


def probe_venv(py: str) -> dict:
    """What is installed in the environment of interpreter `py`: {have: {name: version}, purelib, version}."""
    r = subprocess.run([py, "-c", _PROBE, "{}"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise InstallError(f"{py} could not list its packages:\n{r.stderr.strip()}")
    return json.loads(r.stdout)


def parse_requirement(line: str) -> Optional[tuple]:
    """'numpy<2,>=1.24 ; python_version<"3.12"' -> ('numpy', [('<', '2'), ('>=', '1.24')], marker or None).
    None when the line is not a plain name with version specifiers (a URL, a path)."""
    req, _, marker = line.partition(";")
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*", req)
    if not m:
        return None
    specs = []
    for part in filter(None, (p.strip() for p in m.group(2).split(","))):
        sm = re.fullmatch(r"(===|==|!=|~=|<=|>=|<|>)\s*([A-Za-z0-9.*+!_-]+)", part)
        if not sm:
            return None
        specs.append((sm.group(1), sm.group(2)))
    return _canon(m.group(1)), specs, (marker.strip() or None)


def _release(v: str) -> tuple:
    """The numeric release part of a version ('2.13.0+cpu' -> (2, 13, 0)); enough for our pins."""
    v = v.split("+")[0].split("!")[-1]
    m = re.match(r"\d+(?:\.\d+)*", v)
    return tuple(int(x) for x in m.group(0).split(".")) if m else ()


def _pad(a: tuple, n: int) -> tuple:
    return a + (0,) * (n - len(a))


def version_matches(version: str, op: str, want: str) -> bool:
    if op == "===":
        return version == want
    if want.endswith(".*"):  # ==2.* / !=2.*
        prefix = _release(want[:-2])
        same = _release(version)[:len(prefix)] == prefix
        return same if op == "==" else not same
    a, b = _release(version), _release(want)
    n = max(len(a), len(b))
    a, b = _pad(a, n), _pad(b, n)
    exact = version.split("+")[0] == want.split("+")[0] or (a == b and not re.search(r"[a-z]", version.split("+")[0]))
    if op == "==":
        return exact
    if op == "!=":
        return not exact
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "~=":
        base = _release(want)
        return a >= b and _release(version)[:len(base) - 1] == base[:-1]
    return False


def unmet_requirements(info: dict, wanted, cuda: bool = False) -> list:
    """Requirements the probed environment does not satisfy, as readable strings. `wanted` is a
    {name: version} dict of pins or a list of parse_requirement() tuples. A local version label
    (2.13.0+cpu) satisfies ==2.13.0, except that a CUDA machine wants no +cpu torch. A requirement
    this simple check cannot judge (an environment marker) counts as unmet: pip decides then."""
    have = info["have"]
    if isinstance(wanted, dict):
        wanted = [(n, [("==", v)], None) for n, v in wanted.items()]
    out = []
    for name, specs, marker in wanted:
        text = name + ",".join(op + v for op, v in specs)
        got = have.get(name)
        if marker:
            out.append(f"{text} ; {marker} (left to pip)")
        elif got is None:
            out.append(f"{text} (missing)")
        elif not all(version_matches(got, op, v) for op, v in specs):
            out.append(f"{text} (found {got})")
        elif name == "torch" and cuda and got.endswith("+cpu"):
            out.append(f"{text} with CUDA (found the CPU build {got})")
    for bad in FORBIDDEN:
        if bad in have:
            out.append(f"{bad} must not be installed (found {have[bad]})")
    return out


def requirement_list(path: str) -> list:
    """parse_requirement() of every line (following -r); lines it cannot parse become markers for pip."""
    out = []
    for line in read_requirements(path):
        r = parse_requirement(line)
        out.append(r if r else (line, [], "unparsed"))
    return out


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


def _stamp_key(req_file: str, cuda: bool, py_version: str) -> str:
    return _files_digest(_requirement_files(req_file), extra=f"cuda={cuda};python={py_version};repo={REPO}")


def _read_stamp(venv: str) -> dict:
    try:
        with open(os.path.join(venv, STAMP), encoding="utf-8") as fh:
            d = json.load(fh)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _pth_text() -> str:
    return REPO + "\n" + PLUGIN_SRC + "\n"


def ensure_venv(ops: Ops, venv: str, req_file: str, base_python: Optional[str] = None,
                cuda: Optional[bool] = None) -> str:
    """Make `venv` satisfy `req_file` (and hold a .pth with the repo and plugin/), quickly when it
    already does. Returns the venv's python."""
    py = venv_python(venv)
    label = os.path.relpath(req_file, REPO)
    cuda = nvidia_driver_present() if cuda is None else cuda
    ops.say(f"==> Python environment {venv} for {label}"
            + (" (NVIDIA driver found: CUDA build of torch)" if cuda and "torch" in pins(req_file) else ""))
    if os.path.exists(py) and not _python_runs(py):
        ops.say(f"  {py} does not run (its Python moved or was removed); recreating the environment")
        ops.remove(venv)
    if not os.path.exists(py) or (ops.dry_run and not os.path.isdir(venv)):
        base = base_python or sys.executable
        if ops.run([base, "-m", "venv", venv], what="new virtual environment") != 0:
            raise InstallError(f"Could not create a virtual environment with {base}. On Debian/Ubuntu install "
                               f"the venv module: sudo apt-get install python3-venv")
    if ops.dry_run and not os.path.exists(py):
        wanted = pins(req_file)
        for req, extra, env in (torch_install_attempts(wanted["torch"], cuda)[:1] if "torch" in wanted else []):
            ops.run([py, "-m", "pip", "install", req, *extra], env=env or None, what="torch build")
        ops.run([py, "-m", "pip", "install", "-r", req_file], what="requirements")
        ops.write_text(os.path.join("<site-packages of " + venv + ">", PTH), _pth_text())
        return py

    info = probe_venv(py)
    key = _stamp_key(req_file, cuda, info["version"])
    stamp = _read_stamp(venv)
    pth = os.path.join(info["purelib"], PTH)
    pth_ok = os.path.isfile(pth) and open(pth, encoding="utf-8").read() == _pth_text()
    if stamp.get(label) == key and pth_ok:
        ops.say("  up to date (requirements unchanged since the last install)")
        return py

    wanted = pins(req_file)
    missing = unmet_requirements(info, requirement_list(req_file), cuda)
    if missing:
        ops.say("  to install: " + ", ".join(missing))
        if "torch" in wanted and any(m.startswith("torch==") for m in missing):
            _install_torch(ops, py, wanted["torch"], cuda)
        if ops.run([py, "-m", "pip", "install", "-r", req_file], what="requirements") != 0:
            raise InstallError(f"pip could not install {label} into {venv} (see pip's message above).")
        if not ops.dry_run:
            info = probe_venv(py)
            still = [m for m in unmet_requirements(info, requirement_list(req_file), cuda)
                     if not m.endswith("(left to pip)")]
            if still:
                raise InstallError(f"After pip install, {venv} still lacks: " + ", ".join(still))
    else:
        ops.say("  all requirements already satisfied")
    if not pth_ok:
        ops.write_text(pth, _pth_text())
    if not ops.dry_run:
        stamp[label] = key
        _atomic_write(os.path.join(venv, STAMP), json.dumps(stamp, indent=1) + "\n")
    return py


def _install_torch(ops: Ops, py: str, version: str, cuda: bool) -> None:
    attempts = torch_install_attempts(version, cuda)
    for i, (req, extra, env) in enumerate(attempts):
        rc = ops.run([py, "-m", "pip", "install", req, *extra], env=env or None,
                     what="torch " + ("CUDA build" if cuda else "CPU build"))
        if rc == 0:
            return
        if i + 1 < len(attempts):
            ops.say("  not found there; trying the next source")
    pyv = probe_venv(py)["version"] if os.path.exists(py) else "?"
    raise InstallError(f"pip could not install {attempts[0][0]} for Python {pyv} (see pip's message above). "
                       f"If torch has no wheel for this Python, create the venv with another one: "
                       f"python3 install.py --venv-python /path/to/python3.11")


# ------------------------------------------------------------------------------------------------
# Hosts: where GIMP 3 and Krita 5 keep user plug-ins, and which Python they run

@dataclasses.dataclass
class HostTarget:
    host: str  # "gimp" or "krita"
    variant: str  # "native", "flatpak", "snap", "explicit"
    plugin_root: str  # GIMP: the plug-ins folder; Krita: the pykrita folder
    kritarc: Optional[str] = None
    python_versions: list = dataclasses.field(default_factory=list)  # [] = unknown
    platform_keys: list = dataclasses.field(default_factory=list)
    reason: str = ""

    @property
    def plugin_dir(self) -> str:
        return os.path.join(self.plugin_root, NAME)

    def tags(self, override: Optional[list] = None) -> list:
        versions = override or self.python_versions or list(vendored.SUPPORTED_VERSIONS)
        keys = self.platform_keys or [vendored.platform_key()]
        return python_tags_for(versions, keys)

    def describe(self) -> str:
        pv = ", ".join(self.python_versions) if self.python_versions else "unknown (vendoring 3.10-3.13)"
        return f"{self.host} ({self.variant}) at {self.plugin_root}; Python {pv}; {self.reason}"


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


def _which(name: str, path_env: Optional[str]) -> Optional[str]:
    return shutil.which(name, path=path_env if path_env is not None else os.environ.get("PATH"))


def _python_version_of(exe: str) -> Optional[str]:
    try:
        r = subprocess.run([exe, "-c", "import sys, sysconfig; print('%d.%d%s' % (sys.version_info[0], "
                                       "sys.version_info[1], 't' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''))"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    v = r.stdout.strip()
    return v if r.returncode == 0 and re.fullmatch(r"3\.\d+t?", v) else None


_LIBPY = re.compile(rb"libpython(3\.\d+)")
_DLLPY = re.compile(r"^(?:lib)?python3\.?(\d+)\.dll$", re.I)


def linked_python_versions(binary: str) -> list:
    """Python versions a program or library links (libpython3.X), via ldd, else by reading its
    dynamic-section strings (works for foreign binaries, e.g. inside a chroot)."""
    found = []
    if shutil.which("ldd"):
        try:
            r = subprocess.run(["ldd", binary], capture_output=True, timeout=30)
            for m in _LIBPY.finditer(r.stdout):
                found.append(m.group(1).decode())
        except (OSError, subprocess.SubprocessError):
            pass
    if not found:
        try:
            with open(binary, "rb") as fh:
                head = fh.read(4)
                if head == b"\x7fELF" and os.path.getsize(binary) < 256 * 2 ** 20:
                    fh.seek(0)
                    found = [m.group(1).decode() for m in _LIBPY.finditer(fh.read())]
        except OSError:
            pass
    return sorted(set(found), key=lambda v: int(v.split(".")[1]))


def _krita_python_linux(krita_bin: str) -> list:
    """Krita links Python through its pykrita plug-in library, not the krita binary itself."""
    versions = linked_python_versions(krita_bin)
    if versions:
        return versions
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(krita_bin)))
    for pattern in ("lib/kritaplugins/kritapykrita.so", "lib/*/kritaplugins/kritapykrita.so",
                    "lib64/kritaplugins/kritapykrita.so"):
        for so in glob.glob(os.path.join(prefix, pattern)):
            versions = linked_python_versions(so)
            if versions:
                return versions
    return []


def python_in_root(root: str, host: str) -> list:
    """The Python versions a host installed inside another root filesystem (a chroot) would run."""
    if host == "krita":
        for so in glob.glob(os.path.join(root, "usr/lib/*/kritaplugins/kritapykrita.so")) + \
                glob.glob(os.path.join(root, "usr/lib/kritaplugins/kritapykrita.so")):
            v = linked_python_versions(so)
            if v:
                return v
    py3 = os.path.join(root, "usr", "bin", "python3")
    if os.path.lexists(py3):
        target = os.path.basename(os.readlink(py3)) if os.path.islink(py3) else ""
        m = re.fullmatch(r"python(3\.\d+)", target)
        if m:
            return [m.group(1)]
        libs = sorted(glob.glob(os.path.join(root, "usr", "lib", "python3.*")))
        vs = [os.path.basename(p)[6:] for p in libs if re.fullmatch(r"python3\.\d+", os.path.basename(p))
              and os.path.exists(os.path.join(p, "os.py"))]
        if vs:
            return vs[-1:]
    return []


def _root_of(path: str) -> Optional[str]:
    """The nearest ancestor of `path` that looks like a separate root filesystem (has usr/bin/python3
    and etc/os-release), other than the real /."""
    p = os.path.abspath(path)
    while True:
        parent = os.path.dirname(p)
        if parent == p:
            return None
        p = parent
        if p == os.path.abspath(os.sep):
            return None
        if os.path.lexists(os.path.join(p, "usr", "bin", "python3")) and \
                os.path.exists(os.path.join(p, "etc", "os-release")):
            return p


def _bundled_pythons(folder: str) -> list:
    """Versions of a Python bundled inside an application folder (Windows/macOS)."""
    found = set()
    for dirpath, dirnames, filenames in _walk_limited(folder, 4):
        for f in filenames:
            m = _DLLPY.match(f)
            if m:
                found.add("3." + m.group(1))
            m = re.fullmatch(r"libpython(3\.\d+)\.(?:dylib|dll)", f)
            if m:
                found.add(m.group(1))
        for d in dirnames:
            if re.fullmatch(r"3\.\d+", d) and os.path.basename(dirpath) == "Versions":
                found.add(d)
    return sorted(found, key=lambda v: int(v.split(".")[1]))


def _walk_limited(top: str, depth: int):
    top = os.path.abspath(top)
    base = top.count(os.sep)
    for dirpath, dirnames, filenames in os.walk(top):
        yield dirpath, dirnames, filenames
        if dirpath.count(os.sep) - base >= depth:
            dirnames[:] = []


def _gimp3_dirs(config_base: str) -> list:
    """GIMP 3.x user folders (3.0, 3.2, ...) under a 'GIMP' config folder, newest last."""
    dirs = [d for d in glob.glob(os.path.join(config_base, "3.*")) if os.path.isdir(d)]
    return sorted(dirs, key=lambda d: [int(x) for x in re.findall(r"\d+", os.path.basename(d))])


def _kind(sys_platform: str) -> str:
    return "windows" if sys_platform.startswith("win") else "macos" if sys_platform == "darwin" else "linux"


def detect_hosts(home: Optional[str] = None, sys_platform: Optional[str] = None,
                 path_env: Optional[str] = None, host_python: Optional[list] = None) -> list:
    """Every GIMP 3 and Krita 5 installation for this user, as HostTarget.

    A host counts when its user folder exists or its program is installed. `home` treats another
    folder as the user's home (the real user's XDG/APPDATA variables are then ignored); `path_env`
    replaces PATH when looking for programs; `host_python` (['3.11']) overrides Python detection."""
    sp = sys_platform or sys.platform
    kind = _kind(sp)
    explicit_home = home is not None
    h = os.path.abspath(home) if explicit_home else os.path.expanduser("~")
    env = (lambda name: None) if explicit_home else os.environ.get
    pkeys = [vendored.platform_key()] if _kind(sys.platform) == kind else []
    targets = []

    def add(t: HostTarget):
        if host_python:
            t.python_versions = list(host_python)
        if not t.platform_keys:
            t.platform_keys = list(pkeys) or _default_platform_keys(kind)
        if all(os.path.abspath(x.plugin_root) != os.path.abspath(t.plugin_root) for x in targets):
            targets.append(t)

    if kind == "linux":
        xdg_config = env("XDG_CONFIG_HOME") or os.path.join(h, ".config")
        xdg_data = env("XDG_DATA_HOME") or os.path.join(h, ".local", "share")
        # GIMP: distro builds run plug-ins with the system python3 (it has PyGObject); the shebang
        # `/usr/bin/env python3` may also find another python3 first on PATH, so cover both.
        gimp_bin = next((b for b in (_which("gimp-3.0", path_env), _which("gimp-3", path_env)) if b), None)
        if gimp_bin is None:
            g = _which("gimp", path_env)
            if g and re.search(r"gimp-3", os.path.realpath(g)):
                gimp_bin = g
        gimp_py = []
        for exe in (_which("python3", path_env), "/usr/bin/python3"):
            v = exe and os.path.exists(exe) and _python_version_of(exe)
            if v and v not in gimp_py:
                gimp_py.append(v)
        gdirs = _gimp3_dirs(os.path.join(xdg_config, "GIMP"))
        for d in gdirs:
            add(HostTarget("gimp", "native", os.path.join(d, "plug-ins"), python_versions=list(gimp_py),
                           reason=f"user folder {d} exists"))
        if not gdirs and gimp_bin:
            add(HostTarget("gimp", "native", os.path.join(xdg_config, "GIMP", "3.0", "plug-ins"),
                           python_versions=list(gimp_py), reason=f"program {gimp_bin}"))
        fp = os.path.join(h, ".var", "app", "org.gimp.GIMP")
        if os.path.isdir(fp):
            d = (_gimp3_dirs(os.path.join(fp, "config", "GIMP")) or [os.path.join(fp, "config", "GIMP", "3.0")])[-1]
            add(HostTarget("gimp", "flatpak", os.path.join(d, "plug-ins"), reason=f"flatpak folder {fp}"))
        for d in _gimp3_dirs(os.path.join(h, "snap", "gimp", "current", ".config", "GIMP")):
            add(HostTarget("gimp", "snap", os.path.join(d, "plug-ins"), reason=f"snap folder {d}"))

        krita_bin = _which("krita", path_env)
        kdir = os.path.join(xdg_data, "krita")
        if os.path.isdir(kdir) or krita_bin:
            kpy = _krita_python_linux(krita_bin) if krita_bin else []
            add(HostTarget("krita", "native", os.path.join(kdir, "pykrita"), os.path.join(xdg_config, "kritarc"),
                           python_versions=kpy,
                           reason=f"user folder {kdir} exists" if os.path.isdir(kdir) else f"program {krita_bin}"))
        fp = os.path.join(h, ".var", "app", "org.kde.krita")
        if os.path.isdir(fp):
            add(HostTarget("krita", "flatpak", os.path.join(fp, "data", "krita", "pykrita"),
                           os.path.join(fp, "config", "kritarc"), reason=f"flatpak folder {fp}"))
        sn = os.path.join(h, "snap", "krita")
        if os.path.isdir(sn):
            base = os.path.join(sn, "current")
            add(HostTarget("krita", "snap", os.path.join(base, ".local", "share", "krita", "pykrita"),
                           os.path.join(base, ".config", "kritarc"), reason=f"snap folder {sn}"))
    elif kind == "macos":
        support = os.path.join(h, "Library", "Application Support")
        apps = [os.path.join(a, n) for a in ("/Applications", os.path.join(h, "Applications"))
                for n in ("GIMP.app", "GIMP-3.0.app", "krita.app", "Krita.app")]
        gimp_apps = [a for a in apps if os.path.basename(a).lower().startswith("gimp") and os.path.isdir(a)]
        krita_apps = [a for a in apps if os.path.basename(a).lower().startswith("krita") and os.path.isdir(a)]
        gdirs = _gimp3_dirs(os.path.join(support, "GIMP"))
        gpy = _bundled_pythons(gimp_apps[0]) if gimp_apps else []
        for d in gdirs:
            add(HostTarget("gimp", "native", os.path.join(d, "plug-ins"), python_versions=gpy,
                           reason=f"user folder {d} exists"))
        if not gdirs and gimp_apps:
            add(HostTarget("gimp", "native", os.path.join(support, "GIMP", "3.0", "plug-ins"), python_versions=gpy,
                           reason=f"application {gimp_apps[0]}"))
        kdir = os.path.join(support, "krita")
        if os.path.isdir(kdir) or krita_apps:
            add(HostTarget("krita", "native", os.path.join(kdir, "pykrita"),
                           os.path.join(h, "Library", "Preferences", "kritarc"),
                           python_versions=_bundled_pythons(krita_apps[0]) if krita_apps else [],
                           reason=f"user folder {kdir} exists" if os.path.isdir(kdir) else f"application {krita_apps[0]}"))
    else:
        appdata = env("APPDATA") or os.path.join(h, "AppData", "Roaming")
        local = env("LOCALAPPDATA") or os.path.join(h, "AppData", "Local")
        progs = [p for p in {env("ProgramFiles") or r"C:\Program Files", env("ProgramW6432") or r"C:\Program Files"}]
        gimp_apps = [d for p in progs for d in glob.glob(os.path.join(p, "GIMP 3*")) if os.path.isdir(d)]
        krita_apps = [d for p in progs for d in glob.glob(os.path.join(p, "Krita*")) if os.path.isdir(d)]
        gdirs = _gimp3_dirs(os.path.join(appdata, "GIMP"))
        gpy = _bundled_pythons(gimp_apps[0]) if gimp_apps else []
        for d in gdirs:
            add(HostTarget("gimp", "native", os.path.join(d, "plug-ins"), python_versions=gpy,
                           reason=f"user folder {d} exists"))
        if not gdirs and gimp_apps:
            add(HostTarget("gimp", "native", os.path.join(appdata, "GIMP", "3.0", "plug-ins"), python_versions=gpy,
                           reason=f"program folder {gimp_apps[0]}"))
        kdir = os.path.join(appdata, "krita")
        if os.path.isdir(kdir) or krita_apps:
            add(HostTarget("krita", "native", os.path.join(kdir, "pykrita"), os.path.join(local, "kritarc"),
                           python_versions=_bundled_pythons(krita_apps[0]) if krita_apps else [],
                           reason=f"user folder {kdir} exists" if os.path.isdir(kdir) else f"program folder {krita_apps[0]}"))
    return targets


def _default_platform_keys(kind: str) -> list:
    if kind == "windows":
        return ["win_amd64"]
    if kind == "macos":
        return ["macosx_arm64", "macosx_x86_64"]
    return [vendored.platform_key("linux", _platform.machine() or "x86_64")]


def default_target(host: str, home: Optional[str] = None, sys_platform: Optional[str] = None,
                   host_python: Optional[list] = None) -> HostTarget:
    """Where `host` would keep user plug-ins when it is not detected (for --hosts gimp,krita)."""
    sp = sys_platform or sys.platform
    kind = _kind(sp)
    explicit_home = home is not None
    h = os.path.abspath(home) if explicit_home else os.path.expanduser("~")
    env = (lambda name: None) if explicit_home else os.environ.get
    if kind == "linux":
        cfg = env("XDG_CONFIG_HOME") or os.path.join(h, ".config")
        data = env("XDG_DATA_HOME") or os.path.join(h, ".local", "share")
        g, k, rc = os.path.join(cfg, "GIMP", "3.0", "plug-ins"), os.path.join(data, "krita", "pykrita"), \
            os.path.join(cfg, "kritarc")
    elif kind == "macos":
        sup = os.path.join(h, "Library", "Application Support")
        g, k, rc = os.path.join(sup, "GIMP", "3.0", "plug-ins"), os.path.join(sup, "krita", "pykrita"), \
            os.path.join(h, "Library", "Preferences", "kritarc")
    else:
        appdata = env("APPDATA") or os.path.join(h, "AppData", "Roaming")
        local = env("LOCALAPPDATA") or os.path.join(h, "AppData", "Local")
        g, k, rc = os.path.join(appdata, "GIMP", "3.0", "plug-ins"), os.path.join(appdata, "krita", "pykrita"), \
            os.path.join(local, "kritarc")
    keys = [vendored.platform_key()] if _kind(sys.platform) == kind else _default_platform_keys(kind)
    if host == "gimp":
        return HostTarget("gimp", "native", g, python_versions=list(host_python or []), platform_keys=keys,
                          reason="asked for with --hosts")
    return HostTarget("krita", "native", k, rc, python_versions=list(host_python or []), platform_keys=keys,
                      reason="asked for with --hosts")


def explicit_target(host: str, folder: str, kritarc: Optional[str] = None,
                    host_python: Optional[list] = None) -> HostTarget:
    """A target for --gimp-dir / --krita-dir. The folder may be the plug-ins/pykrita folder or our
    plug-in folder inside it. Inside a chroot, the chroot's Python is detected."""
    folder = os.path.abspath(folder)
    if os.path.basename(folder) == NAME:
        folder = os.path.dirname(folder)
    versions = list(host_python or [])
    reason = "given on the command line"
    if not versions:
        root = _root_of(folder)
        if root:
            versions = python_in_root(root, host)
            reason += f"; Python of the root filesystem {root}"
    if host == "krita" and kritarc is None:
        # pykrita lives in <data>/krita/pykrita; kritarc in the matching config folder
        data_krita = os.path.dirname(folder)
        share = os.path.dirname(data_krita)
        if os.path.basename(share) == "share" and os.path.basename(os.path.dirname(share)) == ".local":
            kritarc = os.path.join(os.path.dirname(os.path.dirname(share)), ".config", "kritarc")
    return HostTarget(host, "explicit", folder, kritarc, versions, [vendored.platform_key()], reason)


# ------------------------------------------------------------------------------------------------
# Vendored wheels for the hosts' own Python

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
            _rm(tmp)
            os.makedirs(tmp)
            for f in files:
                _safe_extract(f, tmp)
            _rm(final)
            os.replace(tmp, final)
    if os.path.isdir(root):
        for old in os.listdir(root):
            if old not in tags:
                ops.remove(os.path.join(root, old))
    return tags


# ------------------------------------------------------------------------------------------------
# Plug-in installation

def _copy_tree(ops: Ops, src: str, dst: str) -> None:
    if not ops.act(f"copy {src} -> {dst}"):
        return
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache"),
                    dirs_exist_ok=True)


def _manifest(host: str, tags: list) -> str:
    rev = ""
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return json.dumps({"name": NAME, "host": host, "source": REPO, "revision": rev, "vendored": tags,
                       "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1) + "\n"


def _swap_in(ops: Ops, staged: str, final: str) -> None:
    """Replace `final` with the fully prepared `staged` folder (the old one disappears only after)."""
    if ops.dry_run:
        return
    old = None
    if os.path.lexists(final):
        old = final + ".old"
        _rm(old)
        os.replace(final, old)
    os.replace(staged, final)
    if old:
        _rm(old)


def _stage(ops: Ops, final: str) -> str:
    """A fresh folder beside `final` to prepare the new install in (in dry-run: `final` itself)."""
    if ops.dry_run:
        return final
    staged = os.path.join(os.path.dirname(final), "." + os.path.basename(final) + ".new")
    _rm(staged)
    os.makedirs(staged)
    return staged


def _plugin_root(dest_dir: str) -> str:
    dest_dir = os.path.abspath(dest_dir)
    return os.path.dirname(dest_dir) if os.path.basename(dest_dir) == NAME else dest_dir


def install_gimp_plugin(dest_dir: str, python_tags: Iterable[str], ops: Optional[Ops] = None,
                        venv: Optional[str] = None, source: Optional[str] = None,
                        client_source: Optional[str] = None, cache: Optional[str] = None) -> str:
    """Install the GIMP 3 plug-in into the plug-ins folder `dest_dir` (or into `dest_dir` itself when
    it is the facesketch folder), with vendored wheels for `python_tags`. Returns the plug-in folder.

    `source` (default plugin/gimp/facesketch) must hold facesketch.py; `client_source` defaults to
    plugin/facesketch_client."""
    ops = ops or Ops(verbose=False)
    source = source or GIMP_SRC
    client_source = client_source or CLIENT_SRC
    script = os.path.join(source, NAME + ".py")
    if not os.path.isfile(script):
        raise InstallError(f"The GIMP plug-in is missing from this checkout: {script}")
    root = _plugin_root(dest_dir)
    final = os.path.join(root, NAME)
    tags = list(python_tags)
    ops.say(f"==> GIMP plug-in -> {final}  (wheels for {', '.join(tags) or 'no Python'})")
    ops.mkdir(root)
    staged = _stage(ops, final)
    _copy_tree(ops, source, staged)
    _copy_tree(ops, client_source, os.path.join(staged, "facesketch_client"))
    # GIMP runs the file named like its folder: executable, LF endings, a python3 shebang
    with open(script, encoding="utf-8") as fh:
        text = fh.read().replace("\r\n", "\n")
    if not text.startswith("#!"):
        text = GIMP_SHEBANG + "\n" + text
    ops.write_text(os.path.join(staged, NAME + ".py"), text, mode=0o755)
    vendor_wheels(staged, tags, ops, venv, cache)
    ops.write_text(os.path.join(staged, MANIFEST), _manifest("gimp", tags))
    _swap_in(ops, staged, final)
    return final


def set_kritarc_enabled(ops: Ops, kritarc: str, enabled: bool) -> None:
    """Set or remove `enable_facesketch=true` in kritarc's [python] group, leaving the rest of the
    file exactly as it was (it is a KConfig file, not strictly INI)."""
    key = f"enable_{NAME}"
    try:
        with open(kritarc, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    out, group, done, changed = [], None, False, False
    i_python_end = None
    for line in lines:
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            if group == "[python]" and i_python_end is None:
                i_python_end = len(out)
            group = s
        if group == "[python]" and re.match(rf"{re.escape(key)}\s*=", s):
            if enabled and not done:
                if s != f"{key}=true":
                    changed = True
                out.append(f"{key}=true")
                done = True
            else:
                changed = True
            continue
        out.append(line)
    if group == "[python]" and i_python_end is None:
        i_python_end = len(out)
    if enabled and not done:
        changed = True
        if i_python_end is not None:
            while i_python_end > 0 and not out[i_python_end - 1].strip():
                i_python_end -= 1
            out.insert(i_python_end, f"{key}=true")
        else:
            if out and out[-1].strip():
                out.append("")
            out += ["[python]", f"{key}=true"]
    if changed:
        ops.write_text(kritarc, "\n".join(out) + "\n")


def kritarc_enabled(kritarc: Optional[str]) -> bool:
    if not kritarc:
        return False
    try:
        with open(kritarc, encoding="utf-8", errors="replace") as fh:
            group = None
            for line in fh:
                s = line.strip()
                if s.startswith("[") and s.endswith("]"):
                    group = s
                elif group == "[python]" and s.replace(" ", "") == f"enable_{NAME}=true":
                    return True
    except OSError:
        pass
    return False


def install_krita_plugin(dest_dir: str, python_tags: Iterable[str], kritarc: Optional[str] = None,
                         ops: Optional[Ops] = None, venv: Optional[str] = None, source: Optional[str] = None,
                         client_source: Optional[str] = None, cache: Optional[str] = None) -> str:
    """Install the Krita 5 plug-in into the pykrita folder `dest_dir`: facesketch.desktop and the
    facesketch package (with facesketch_client and vendored wheels inside it), and enable it in
    `kritarc` when given. Returns the package folder.

    `source` (default plugin/krita) must hold facesketch.desktop and facesketch/."""
    ops = ops or Ops(verbose=False)
    source = source or KRITA_SRC
    client_source = client_source or CLIENT_SRC
    desktop = os.path.join(source, NAME + ".desktop")
    package = os.path.join(source, NAME)
    for p in (desktop, package):
        if not os.path.exists(p):
            raise InstallError(f"The Krita plug-in is missing from this checkout: {p}")
    root = _plugin_root(dest_dir)
    final = os.path.join(root, NAME)
    tags = list(python_tags)
    ops.say(f"==> Krita plug-in -> {final}  (wheels for {', '.join(tags) or 'no Python'})")
    ops.mkdir(root)
    staged = _stage(ops, final)
    _copy_tree(ops, package, staged)
    _copy_tree(ops, client_source, os.path.join(staged, "facesketch_client"))
    vendor_wheels(staged, tags, ops, venv, cache)
    ops.write_text(os.path.join(staged, MANIFEST), _manifest("krita", tags))
    _swap_in(ops, staged, final)
    with open(desktop, encoding="utf-8") as fh:
        ops.write_text(os.path.join(root, NAME + ".desktop"), fh.read().replace("\r\n", "\n"))
    if kritarc:
        set_kritarc_enabled(ops, kritarc, True)
    return final


def _remove_plugin_folder(ops: Ops, folder: str) -> bool:
    if not os.path.lexists(folder):
        return False
    if not os.path.exists(os.path.join(folder, MANIFEST)):
        ops.say(f"  leaving {folder}: it was not installed by install.py (no {MANIFEST})")
        return False
    ops.remove(folder)
    return True


def uninstall_gimp_plugin(dest_dir: str, ops: Optional[Ops] = None) -> bool:
    ops = ops or Ops(verbose=False)
    root = _plugin_root(dest_dir)
    return _remove_plugin_folder(ops, os.path.join(root, NAME))


def uninstall_krita_plugin(dest_dir: str, kritarc: Optional[str] = None, ops: Optional[Ops] = None) -> bool:
    ops = ops or Ops(verbose=False)
    root = _plugin_root(dest_dir)
    removed = _remove_plugin_folder(ops, os.path.join(root, NAME))
    desktop = os.path.join(root, NAME + ".desktop")
    if removed or (os.path.exists(desktop) and not os.path.exists(os.path.join(root, NAME))):
        ops.remove(desktop)
    if kritarc and os.path.exists(kritarc):
        set_kritarc_enabled(ops, kritarc, False)
    return removed


def install_target(ops: Ops, t: HostTarget, override_python: Optional[list] = None,
                   venv: Optional[str] = None, plugin_src: Optional[str] = None) -> str:
    """Install into one detected (or named) host. `plugin_src` replaces the repo's plugin/ folder
    (it must hold gimp/facesketch/, krita/ and facesketch_client/ laid out the same way)."""
    tags = t.tags(override_python)
    src = plugin_src or PLUGIN_SRC
    client = os.path.join(src, "facesketch_client")
    if t.host == "gimp":
        return install_gimp_plugin(t.plugin_root, tags, ops, venv, os.path.join(src, "gimp", NAME), client)
    return install_krita_plugin(t.plugin_root, tags, t.kritarc, ops, venv, os.path.join(src, "krita"), client)


def _stale_files(src: str, installed: str) -> list:
    """Python files of `src` that differ from (or are missing in) `installed`."""
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [x for x in dirnames if x != "__pycache__"]
        for f in filenames:
            if not f.endswith(".py"):
                continue
            a = os.path.join(dirpath, f)
            b = os.path.join(installed, os.path.relpath(a, src))
            try:
                with open(a, "rb") as fa, open(b, "rb") as fb:
                    x, y = fa.read().replace(b"\r\n", b"\n"), fb.read()
                if x != y and not (y.startswith(GIMP_SHEBANG.encode()) and y.split(b"\n", 1)[1] == x):
                    out.append(os.path.relpath(a, src))
            except OSError:
                out.append(os.path.relpath(a, src))
    return out


def check_target(t: HostTarget, override_python: Optional[list] = None, plugin_src: Optional[str] = None) -> list:
    """Problems with the install at `t` (empty = fine), including files older than this checkout."""
    d = t.plugin_dir
    problems = []
    if not os.path.isfile(os.path.join(d, MANIFEST)):
        return [f"not installed ({d} missing)"]
    src = plugin_src or PLUGIN_SRC
    host_src = os.path.join(src, "gimp", NAME) if t.host == "gimp" else os.path.join(src, "krita", NAME)
    stale = _stale_files(os.path.join(src, "facesketch_client"), os.path.join(d, "facesketch_client")) + \
        (_stale_files(host_src, d) if os.path.isdir(host_src) else [])
    if stale:
        problems.append("older than this checkout (" + ", ".join(sorted(stale)[:4])
                        + (", ..." if len(stale) > 4 else "") + "): re-run install.py")
    if not os.path.isdir(os.path.join(d, "facesketch_client")):
        problems.append("facesketch_client missing")
    if t.host == "gimp":
        script = os.path.join(d, NAME + ".py")
        if not os.path.isfile(script) or not os.access(script, os.X_OK):
            problems.append(f"{script} missing or not executable")
    else:
        if not os.path.isfile(os.path.join(t.plugin_root, NAME + ".desktop")):
            problems.append("facesketch.desktop missing")
        if t.kritarc and not kritarc_enabled(t.kritarc):
            problems.append(f"not enabled in {t.kritarc}")
    have = vendored.available_tags(d)
    wanted = t.tags(override_python)
    missing = [x for x in wanted if x not in have]
    if missing:
        problems.append("no vendored wheels for " + ", ".join(missing))
    for tag in have:
        if not glob.glob(os.path.join(d, vendored.VENDOR_DIR, tag, "zmq", "__init__.py")):
            problems.append(f"vendored {tag} lacks pyzmq")
    return problems


# ------------------------------------------------------------------------------------------------
# Settings

def default_backend_command(venv: str) -> list:
    return [venv_python(venv), "-m", "facesketch", "serve"]


def write_default_settings(ops: Ops, settings_path: str, venv: str) -> None:
    """Create the settings file, or point its backend_command at this venv when that moved; every
    other value the user set is kept."""
    cmd = default_backend_command(venv)
    exists = os.path.exists(settings_path)
    s = fs_settings.load(settings_path)
    if exists and s.load_warning:
        ops.say(f"==> Settings {settings_path}: {s.load_warning} Leaving it alone; fix or delete it.")
        return
    bc = list(s.backend_command)
    if not bc:
        s.backend_command = cmd
    elif len(bc) >= 4 and bc[1:4] == ["-m", "facesketch", "serve"] and bc[0] != cmd[0]:
        s.backend_command = [cmd[0]] + bc[1:]  # keep extra arguments the user added
    if exists and s.backend_command == bc:
        ops.say(f"==> Settings {settings_path}: kept as they are")
        return
    ops.say(f"==> Settings {settings_path}: " + ("backend_command updated" if exists else "new file"))
    if ops.act(f"write {settings_path} (backend_command = {' '.join(s.backend_command)})"):
        fs_settings.save(s, settings_path)


# ------------------------------------------------------------------------------------------------
# Test and apt helpers

def read_apt_packages(path: str = TEST_APT_PACKAGES) -> list:
    try:
        with open(path, encoding="utf-8") as fh:
            return [w for line in fh for w in line.split("#", 1)[0].split()]
    except FileNotFoundError:
        return []


def apt_install(ops: Ops, packages: list) -> None:
    """apt-get install -y the Debian packages not installed yet (only as root, only with apt)."""
    if not packages:
        return
    if not shutil.which("apt-get") or not shutil.which("dpkg-query"):
        ops.say(f"  no apt-get here; host tests needing {' '.join(packages)} will skip themselves")
        return
    missing = []
    for p in packages:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if not missing:
        return
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        ops.say(f"  not root: not installing {' '.join(missing)} (host tests that need them will skip)")
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", *missing]
    if ops.run(cmd, env=env, what="Debian packages for the host tests") != 0:
        ops.run(["apt-get", "update"], env=env)
        if ops.run(cmd, env=env) != 0:
            ops.say(f"  apt-get could not install {' '.join(missing)}; host tests that need them will skip")


def run_pytest(ops: Ops, py: str, args: list) -> int:
    cmd = [py, "-m", "pytest", *args]
    ops.say("==> Tests")
    rc = ops.run(cmd, cwd=REPO)
    if rc == 5:
        print("install.py: pytest collected no tests; that counts as a failure.", file=sys.stderr)
        return 1
    return rc


# ------------------------------------------------------------------------------------------------
# Command line

def _parse(argv: list) -> tuple:
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="install.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Arguments after `--` go to pytest (--test) or to `backend serve` (--serve).")
    p.add_argument("--hosts", default="auto",
                   help="which host plug-ins to install: auto (every host found; default), gimp, krita, "
                        "gimp,krita, or none")
    p.add_argument("--dry-run", action="store_true", help="print every action, change nothing")
    p.add_argument("--uninstall", action="store_true", help="remove the plug-ins (settings are kept)")
    p.add_argument("--purge", action="store_true",
                   help="with --uninstall: also remove the settings file, the venvs and the wheel cache")
    p.add_argument("--check", action="store_true",
                   help="report what is installed where; exit 1 if something is missing")
    p.add_argument("--home", help="treat DIR as the user's home (tests, chroots)", metavar="DIR")
    p.add_argument("--gimp-dir", action="append", default=[], metavar="DIR",
                   help="install the GIMP plug-in into this plug-ins folder (repeatable; replaces detection)")
    p.add_argument("--krita-dir", action="append", default=[], metavar="DIR",
                   help="install the Krita plug-in into this pykrita folder (repeatable; replaces detection)")
    p.add_argument("--kritarc", help="the kritarc to enable the plug-in in (with --krita-dir)")
    p.add_argument("--host-python", metavar="X.Y[,X.Y]",
                   help="the hosts' Python version(s), instead of detecting them")
    p.add_argument("--venv", default=os.path.join(REPO, ".venv"), help="backend venv (default: <repo>/.venv)")
    p.add_argument("--venv-python", help="the python3 to create the venv with (default: this one)")
    p.add_argument("--no-venv", action="store_true", help="skip the backend venv (plug-ins and settings only)")
    p.add_argument("--test", action="store_true",
                   help="also install test requirements (and, as root, tests/apt-packages.txt), then run pytest")
    p.add_argument("--no-apt", action="store_true", help="with --test: do not apt-get install anything")
    p.add_argument("--serve", action="store_true", help="after setup, run the backend in the foreground")
    p.add_argument("--prep", action="store_true",
                   help="also create .venv-prep for data preparation (models/data/requirements-prep.txt)")
    p.add_argument("--plugin-src", metavar="DIR",
                   help="take the plug-ins from DIR instead of <repo>/plugin (same layout; for tests and packaging)")
    p.add_argument("--quiet", action="store_true", help="print only problems")
    a = p.parse_args(argv)
    return a, rest


def _host_list(spec: str) -> Optional[list]:
    """None for auto, else the hosts named."""
    s = [x.strip().lower() for x in spec.split(",") if x.strip()]
    if s in (["auto"], []):
        return None
    if s == ["none"]:
        return []
    bad = [x for x in s if x not in ("gimp", "krita")]
    if bad:
        raise InstallError(f"--hosts: unknown host {', '.join(bad)} (use gimp, krita, auto or none)")
    return s


def resolve_targets(a, host_python: Optional[list]) -> list:
    if a.gimp_dir or a.krita_dir:
        return [explicit_target("gimp", d, host_python=host_python) for d in a.gimp_dir] + \
               [explicit_target("krita", d, a.kritarc, host_python=host_python) for d in a.krita_dir]
    wanted = _host_list(a.hosts)
    if wanted is None and a.test:
        wanted = []  # testing does not touch the user's hosts; host tests install into their own HOME
    found = detect_hosts(a.home, host_python=host_python)
    if wanted is None:
        return found
    out = [t for t in found if t.host in wanted]
    for h in wanted:
        if not any(t.host == h for t in out):
            out.append(default_target(h, a.home, host_python=host_python))
    return out


def cmd_check(a, targets: list, host_python: Optional[list], settings_path: str) -> int:
    ok = True
    print(f"facesketch at {REPO}")
    py = venv_python(a.venv)
    if a.no_venv:
        print(f"backend venv: not checked (--no-venv)")
    elif not os.path.exists(py) or not _python_runs(py):
        print(f"backend venv: MISSING ({a.venv}); run python3 install.py")
        ok = False
    else:
        info = probe_venv(py)
        missing = [m for m in unmet_requirements(info, requirement_list(REQUIREMENTS), nvidia_driver_present())
                   if not m.endswith("(left to pip)")]
        pth = os.path.join(info["purelib"], PTH)
        if not os.path.isfile(pth):
            missing.append(f"{PTH} (facesketch from any folder)")
        status = "ok" if not missing else "PROBLEM: " + ", ".join(missing)
        torch_v = info["have"].get("torch", "none")
        print(f"backend venv: {a.venv} (Python {info['version']}, torch {torch_v}): {status}")
        ok &= not missing
    s_exists = os.path.exists(settings_path)
    s = fs_settings.load(settings_path)
    line = f"settings: {settings_path}"
    if not s_exists:
        line += ": MISSING"
        ok = False
    elif s.load_warning:
        line += ": PROBLEM: " + s.load_warning
        ok = False
    else:
        line += f" (address {s.address}, backend_command {' '.join(s.backend_command) or '(none)'})"
        if s.backend_command and not os.path.exists(s.backend_command[0]) and not shutil.which(s.backend_command[0]):
            line += f": PROBLEM: {s.backend_command[0]} does not exist"
            ok = False
    print(line)
    if not targets:
        print("hosts: no GIMP 3 or Krita 5 found for this user")
    for t in targets:
        problems = check_target(t, host_python, a.plugin_src)
        tags = vendored.available_tags(t.plugin_dir)
        print(f"{t.host} ({t.variant}): {t.plugin_dir}: " + ("ok" if not problems else "PROBLEM: " + "; ".join(problems)))
        print(f"    Python {', '.join(t.python_versions) or 'unknown'}; vendored: {', '.join(tags) or 'none'}")
        ok &= not problems
    print("all good" if ok else "something is missing: run python3 install.py")
    return 0 if ok else 1


def main(argv: Optional[list] = None) -> int:
    a, rest = _parse(list(sys.argv[1:] if argv is None else argv))
    ops = Ops(dry_run=a.dry_run, verbose=not a.quiet)
    if os.environ.get("SUDO_USER") and hasattr(os, "geteuid") and os.geteuid() == 0 and not a.home \
            and not a.test and not (a.gimp_dir or a.krita_dir):
        print(f"install.py: running under sudo: the plug-ins and settings go into root's home, not "
              f"{os.environ['SUDO_USER']}'s. Run it without sudo (it needs no root rights).", file=sys.stderr)
    host_python = [v.strip() for v in a.host_python.split(",")] if a.host_python else None
    if host_python:
        python_tags_for(host_python)  # validate early
    a.venv = os.path.abspath(a.venv)
    settings_path = fs_settings.path(home=os.path.abspath(a.home) if a.home else None)
    targets = resolve_targets(a, host_python)

    if a.check:
        return cmd_check(a, targets, host_python, settings_path)

    if a.uninstall:
        if not targets:
            ops.say("No host plug-in folders found.")
        for t in targets:
            ops.say(f"==> Removing the {t.host} plug-in from {t.plugin_root}")
            if t.host == "gimp":
                uninstall_gimp_plugin(t.plugin_root, ops)
            else:
                uninstall_krita_plugin(t.plugin_root, t.kritarc, ops)
        if a.purge:
            ops.say("==> Purging settings, environments and caches")
            ops.remove(settings_path)
            ops.remove(fs_settings.state_dir(home=os.path.abspath(a.home) if a.home else None))
            if not a.no_venv:
                ops.remove(a.venv)
                ops.remove(os.path.join(REPO, ".venv-prep"))
            ops.remove(wheel_cache_dir())
        else:
            ops.say(f"Kept the settings file {settings_path} (add --purge to remove it and the venvs).")
        return 0

    py = venv_python(a.venv)
    if not a.no_venv:
        py = ensure_venv(ops, a.venv, REQUIREMENTS_TEST if a.test else REQUIREMENTS, a.venv_python)
    if a.prep:
        if not os.path.isfile(REQUIREMENTS_PREP):
            raise InstallError(f"{REQUIREMENTS_PREP} does not exist in this checkout")
        ensure_venv(ops, os.path.join(REPO, ".venv-prep"), REQUIREMENTS_PREP, a.venv_python)
    if not targets:
        ops.say("==> No host plug-ins to install" + (" (none found)" if _host_list(a.hosts) is None and not a.test else ""))
    failed = []
    for t in targets:
        ops.say(f"    {t.describe()}")
        try:
            install_target(ops, t, host_python, None if a.no_venv else a.venv, a.plugin_src)
        except InstallError as e:  # the other host may still work
            print(f"install.py: {t.host} plug-in not installed: {e}", file=sys.stderr)
            failed.append(t.host)
    write_default_settings(ops, settings_path, a.venv)
    if failed and not a.test:
        print(f"install.py: finished with problems ({', '.join(failed)}); see above.", file=sys.stderr)
        return 1

    if a.test:
        if not a.no_apt:
            apt_install(ops, read_apt_packages())
        return run_pytest(ops, py, rest)
    if a.serve:
        # serve where the plug-ins look, as facesketch_client.launcher does for auto-start
        s = fs_settings.load(settings_path)
        extra = [] if "--bind" in rest else ["--bind", s.address]
        extra += [] if "--log-level" in rest else ["--log-level", s.log_level]
        cmd = [py, "-m", "facesketch", "serve", *extra, *rest]
        ops.say("==> Starting the backend: " + " ".join(cmd))
        if ops.dry_run:
            return 0
        sys.stdout.flush()
        os.chdir(REPO)
        os.execv(py, cmd)
    ops.say("Done." + ("" if a.dry_run else " Restart GIMP/Krita to load the plug-ins."))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except InstallError as e:
        print(f"install.py: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
