"""Requirement files, and which of their requirements an environment does not satisfy.

The judging runs inside the environment being judged (probe_venv), with the `packaging` library
(PEP 440 versions, PEP 508 markers) of that environment: its own copy when installed, else the copy
pip carries (pip._vendor.packaging), which every environment install.py makes has. Running it
there, not in install.py's python3, also makes markers such as python_version see the environment's
own Python (--venv-python can make it another one than install.py's).
"""
from __future__ import annotations

import json
import os
import re
import subprocess

from . import InstallError

FORBIDDEN = ("torchvision",)  # never in our venvs (pulls a second torch build, GBs)


def _lines(path: str, seen: list):
    """(file, requirement line) for `path` and every file it includes with -r; `seen` collects the files."""
    path = os.path.abspath(path)
    if path in seen:
        return
    seen.append(path)
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if line.startswith(("-r ", "--requirement ")):
                yield from _lines(os.path.join(os.path.dirname(path), line.split(None, 1)[1]), seen)
            elif line and not line.startswith("-"):
                yield path, line


def read_requirements(path: str) -> list:
    """The requirement lines of a requirements file, following `-r other.txt`."""
    return [line for _, line in _lines(path, [])]


def requirement_files(path: str) -> list:
    """The file and every file it includes with -r (what the venv stamp hashes)."""
    seen: list = []
    for _ in _lines(path, seen):
        pass
    return seen


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: str) -> dict:
    """{canonical name: version} for every `name==version` line (following -r)."""
    out = {}
    for line in read_requirements(path):
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*==\s*([A-Za-z0-9.+!_-]+)\s*(?:;.*)?", line)
        if m:
            out[canonical(m.group(1))] = m.group(2)
    return out


_PROBE = r"""
import importlib.metadata as md, json, re, sys, sysconfig
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
have, direct = {}, {}
for d in md.distributions():  # in import order: the first of a name is the one Python imports
    n = d.metadata["Name"] and canon(d.metadata["Name"])
    if n and n not in have:
        have[n], direct[n] = d.version, d.read_text("direct_url.json")
try:
    from packaging.requirements import Requirement
except ImportError:
    try:
        from pip._vendor.packaging.requirements import Requirement
    except ImportError:
        Requirement = None
unmet = None if Requirement is None else []
for line in json.loads(sys.argv[1]) if Requirement else []:
    try:
        r = Requirement(line)
    except Exception:
        unmet.append(line + " (left to pip)")
        continue
    if r.marker is not None and not r.marker.evaluate():
        continue
    name, got = canon(r.name), have.get(canon(r.name))
    try:
        ok = got is not None and r.specifier.contains(got, prereleases=True)
    except Exception:
        ok = False
    if not ok:
        unmet.append(name + str(r.specifier) + (" (missing)" if got is None else " (found %s)" % got))
print(json.dumps({"have": have, "unmet": unmet, "facesketch_url": direct.get("facesketch"),
                  "purelib": sysconfig.get_paths()["purelib"], "version": "%d.%d" % sys.version_info[:2]}))
"""


def probe_venv(py: str, lines: list = ()) -> dict:
    """What the environment of interpreter `py` has: {have: {name: version}, purelib, version,
    facesketch_url (the text of facesketch's direct_url.json, or None), lines, unmet: the
    requirement `lines` it does not satisfy (None when it has no packaging library to judge them)}."""
    # -I: what the environment itself has (not the current folder, PYTHONPATH or the user site-packages)
    r = subprocess.run([py, "-I", "-c", _PROBE, json.dumps(list(lines))], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise InstallError(f"{py} could not list its packages:\n{r.stderr.strip()}")
    info = json.loads(r.stdout)
    info["lines"] = list(lines)
    return info


def _release(v: str) -> list:
    parts = [int(x) for x in v.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return parts


def _unmet_without_packaging(have: dict, lines: list) -> list:
    """The judge for an environment with neither packaging nor pip (so not one install.py made, e.g.
    a venv made --without-pip that --check looks at). It is kept this small on purpose: it judges a
    plain name and an exact `name==X.Y.Z` pin (a local label like +cpu ignored, 2.13 == 2.13.0),
    the only forms our runtime requirement files use; any other line is left to pip, which is always
    right, only slower."""
    out = []
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*(\d+(?:\.\d+)*))?", line.strip())
        if not m:
            out.append(f"{line} (left to pip)")
            continue
        name, want = canonical(m.group(1)), m.group(2)
        got = have.get(name)
        text = name + ("==" + want if want else "")
        if got is None:
            out.append(f"{text} (missing)")
        elif want and not (re.fullmatch(r"\d+(?:\.\d+)*", got.split("+")[0])
                           and _release(got.split("+")[0]) == _release(want)):
            out.append(f"{text} (found {got})")
    return out


def unmet_requirements(info: dict, lines: list, cuda: bool = False) -> list:
    """Requirement `lines` that the probed environment `info` does not satisfy, as readable strings
    ("numpy<2 (found 2.4.6)", "tqdm (missing)"). A CUDA machine also wants no +cpu torch, and
    torchvision must not be there at all. Lines that cannot be judged end in "(left to pip)"."""
    have = info["have"]
    judged = info.get("unmet") if info.get("lines") == list(lines) else None
    out = list(judged) if judged is not None else _unmet_without_packaging(have, lines)
    torch = have.get("torch", "")
    names = [canonical(re.match(r"[A-Za-z0-9._-]*", x).group(0)) for x in lines]
    if cuda and torch.endswith("+cpu") and "torch" in names:
        out.append(f"torch=={torch.split('+')[0]} with CUDA (found the CPU build {torch})")
    for bad in FORBIDDEN:
        if bad in have:
            out.append(f"{bad} must not be installed (found {have[bad]})")
    return out

