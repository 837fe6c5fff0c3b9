"""Install, uninstall and check the host plug-ins (what install.py and the host tests call).

Installed layout (the plug-ins rely on it):
  GIMP   <plug-ins>/facesketch/facesketch.py (executable, LF, python3 shebang), the other files of
         plugin/gimp/facesketch/, facesketch_client/, _vendor/<tag>/, .facesketch-install.json
  Krita  <pykrita>/facesketch.desktop and <pykrita>/facesketch/ (the files of plugin/krita/facesketch/)
         holding facesketch_client/, _vendor/<tag>/ and .facesketch-install.json; kritarc gets
         `[python] enable_facesketch=true`.
Each install is prepared beside the old one and swapped in whole; __pycache__ is never copied.

    install_gimp_plugin("<chroot>/root/.config/GIMP/3.0/plug-ins", python_tags_for(["3.13"]))
    install_krita_plugin("<home>/.local/share/krita/pykrita", python_tags_for(["3.11"]), "<home>/.config/kritarc")
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import time
from typing import Iterable, Optional

from . import CLIENT_SRC, NAME, PLUGIN_SRC, REPO, InstallError, client_module
from .hosts import HostTarget
from .ops import Ops, rm
from .wheels import python_tags_for, vendor_wheels  # noqa: F401  (python_tags_for: the host tests use it from here)

vendored = client_module("vendored")
GIMP_SRC = os.path.join(PLUGIN_SRC, "gimp", NAME)
KRITA_SRC = os.path.join(PLUGIN_SRC, "krita")
MANIFEST = ".facesketch-install.json"
GIMP_SHEBANG = "#!/usr/bin/env python3"


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
        rm(old)
        os.replace(final, old)
    os.replace(staged, final)
    if old:
        rm(old)


def _stage(ops: Ops, final: str) -> str:
    """A fresh folder beside `final` to prepare the new install in (in dry-run: `final` itself)."""
    if ops.dry_run:
        return final
    staged = os.path.join(os.path.dirname(final), "." + os.path.basename(final) + ".new")
    rm(staged)
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
