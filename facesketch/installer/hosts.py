"""Where GIMP 3 and Krita 5 keep user plug-ins on Linux, macOS and Windows, and which Python each
runs (the plug-ins get wheels for that Python). Native installs, flatpak and snap on Linux; a folder
inside a chroot gets the chroot's Python."""
from __future__ import annotations

import dataclasses
import glob
import os
import platform as _platform
import re
import shutil
import subprocess
import sys
from typing import Optional

from . import NAME, client_module
from .wheels import python_tags_for

vendored = client_module("vendored")


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


def _which(name: str, path_env: Optional[str]) -> Optional[str]:
    return shutil.which(name, path=path_env if path_env is not None else os.environ.get("PATH"))


def python_version_of(exe: str) -> Optional[str]:
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
            v = exe and os.path.exists(exe) and python_version_of(exe)
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
