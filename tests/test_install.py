"""install.py (and its package facesketch/installer/) in a temporary HOME with fake host folders:
plug-ins land in the right places with wheels vendored for the detected host Python (real
`pip download`, cached under ~/.cache/facesketch/wheels), --dry-run changes nothing, --uninstall
removes what was installed, --check reports, the settings file is written once and kept (an older
install's backend_command migrated), a real venv gets the project installed editable, and the
vendored pyzmq really imports in a Python of that version."""
import glob
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig

import pytest

from facesketch.installer import hosts, plugins, requirements, testing, venv, wheels
from facesketch.installer import settings as installer_settings
from facesketch.installer.ops import Ops
from facesketch_client import vendored

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALL = os.path.join(REPO, "install.py")
PYVER = "%d.%d" % sys.version_info[:2]
TAG = vendored.current_tag()


def _snapshot(root):
    """Every path under root with its size and mode: enough to see that nothing changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size if not stat.S_ISDIR(st.st_mode) else -1, st.st_mode)
    return out


@pytest.fixture(scope="module")
def plugin_src(tmp_path_factory):
    """A plugin/ tree for install.py: the real client package and the real host plug-ins where they
    exist in this checkout, small stand-ins where a host plug-in is not written yet."""
    src = tmp_path_factory.mktemp("plugin_src")
    shutil.copytree(os.path.join(REPO, "plugin", "facesketch_client"), src / "facesketch_client",
                    ignore=shutil.ignore_patterns("__pycache__"))
    gimp = os.path.join(REPO, "plugin", "gimp", "facesketch")
    if os.path.isfile(os.path.join(gimp, "facesketch.py")):
        shutil.copytree(gimp, src / "gimp" / "facesketch", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        (src / "gimp" / "facesketch").mkdir(parents=True)
        # CRLF and no shebang on purpose: install.py must fix both for GIMP
        (src / "gimp" / "facesketch" / "facesketch.py").write_bytes(b"import facesketch_client\r\nprint('gimp')\r\n")
        (src / "gimp" / "facesketch" / "helpers.py").write_text("X = 1\n")
    krita = os.path.join(REPO, "plugin", "krita")
    if os.path.isfile(os.path.join(krita, "facesketch.desktop")) and \
            os.path.isfile(os.path.join(krita, "facesketch", "__init__.py")):
        shutil.copytree(krita, src / "krita", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        (src / "krita" / "facesketch").mkdir(parents=True)
        (src / "krita" / "facesketch.desktop").write_text(
            "[Desktop Entry]\nType=Service\nServiceTypes=Krita/PythonPlugin\nX-KDE-Library=facesketch\nName=Face Sketch\n")
        (src / "krita" / "facesketch" / "__init__.py").write_text("import facesketch_client\n")
    return src


def _elf_linking_libpython():
    """A real program or library that links libpython<this version> (stands in for kritapykrita.so)."""
    candidates = [os.path.realpath(sys.executable)]
    libdir, ldlib = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if libdir and ldlib:
        candidates.append(os.path.join(libdir, ldlib))
    for c in candidates:
        if os.path.isfile(c) and PYVER in hosts.linked_python_versions(c):
            return c
    pytest.skip(f"no binary linking libpython{PYVER} here to stand in for Krita's Python plug-in library")


@pytest.fixture(scope="module")
def fake_bin(tmp_path_factory):
    """PATH folder with a `krita` launcher (like Debian's: the binary does not link Python) whose
    prefix has lib/<arch>/kritaplugins/kritapykrita.so linking libpython, and a `python3`."""
    prefix = tmp_path_factory.mktemp("prefix")
    (prefix / "bin").mkdir()
    krita = prefix / "bin" / "krita"
    krita.write_text("#!/bin/sh\necho fake krita\n")
    krita.chmod(0o755)
    plug = prefix / "lib" / "x86_64-linux-gnu" / "kritaplugins"
    plug.mkdir(parents=True)
    shutil.copy(_elf_linking_libpython(), plug / "kritapykrita.so")
    os.symlink(sys.executable, prefix / "bin" / "python3")
    return str(prefix / "bin")


def _run_install(args, home, fake_bin, extra_env=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("FACESKETCH_SETTINGS", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")}
    env["PATH"] = fake_bin + os.pathsep + "/usr/bin:/bin"
    env.update(extra_env or {})
    r = subprocess.run([sys.executable, INSTALL, "--home", str(home), *args], capture_output=True, text=True,
                       env=env, timeout=300)
    return r


def _fake_home(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    (home / ".local" / "share" / "krita").mkdir(parents=True)
    return home


# ------------------------------------------------------------------------------------------------

def test_detects_hosts_and_their_python(tmp_path, fake_bin):
    home = _fake_home(tmp_path)
    (home / ".var" / "app" / "org.kde.krita").mkdir(parents=True)  # a flatpak Krita too
    targets = hosts.detect_hosts(str(home), sys_platform="linux", path_env=fake_bin)
    by = {(t.host, t.variant): t for t in targets}
    assert set(by) == {("gimp", "native"), ("krita", "native"), ("krita", "flatpak")}
    g, k, kf = by["gimp", "native"], by["krita", "native"], by["krita", "flatpak"]
    assert g.plugin_root == str(home / ".config" / "GIMP" / "3.0" / "plug-ins")
    assert PYVER in g.python_versions  # the python3 the shebang finds on PATH
    assert k.plugin_root == str(home / ".local" / "share" / "krita" / "pykrita")
    assert k.kritarc == str(home / ".config" / "kritarc")
    assert k.python_versions == [PYVER]  # from the libpython that kritapykrita.so links
    assert TAG in k.tags()
    assert kf.plugin_root == str(home / ".var" / "app" / "org.kde.krita" / "data" / "krita" / "pykrita")
    assert kf.python_versions == []  # a flatpak's Python is unknown: every version hosts ship
    assert [t.split("-")[0] for t in kf.tags()] == ["cp310", "cp311", "cp312", "cp313"]


def test_detects_nothing_in_an_empty_home(tmp_path):
    (tmp_path / "bin").mkdir()
    assert hosts.detect_hosts(str(tmp_path), sys_platform="linux", path_env=str(tmp_path / "bin")) == []


def test_macos_and_windows_user_folders(tmp_path):
    mac = tmp_path / "mac"
    (mac / "Library" / "Application Support" / "GIMP" / "3.0").mkdir(parents=True)
    (mac / "Library" / "Application Support" / "krita").mkdir(parents=True)
    t = {x.host: x for x in hosts.detect_hosts(str(mac), sys_platform="darwin", path_env="")}
    assert t["gimp"].plugin_root == str(mac / "Library" / "Application Support" / "GIMP" / "3.0" / "plug-ins")
    assert t["krita"].plugin_root == str(mac / "Library" / "Application Support" / "krita" / "pykrita")
    assert t["krita"].kritarc == str(mac / "Library" / "Preferences" / "kritarc")
    assert any(tag.endswith("macosx_arm64") for tag in t["krita"].tags())
    win = tmp_path / "win"
    (win / "AppData" / "Roaming" / "GIMP" / "3.0").mkdir(parents=True)
    (win / "AppData" / "Roaming" / "krita").mkdir(parents=True)
    t = {x.host: x for x in hosts.detect_hosts(str(win), sys_platform="win32", path_env="")}
    assert t["gimp"].plugin_root == str(win / "AppData" / "Roaming" / "GIMP" / "3.0" / "plug-ins")
    assert t["krita"].kritarc == str(win / "AppData" / "Local" / "kritarc")
    assert "cp312-win_amd64" in t["gimp"].tags()


def test_python_of_a_chroot_is_detected_for_explicit_folders(tmp_path):
    root = tmp_path / "chroot"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text("ID=debian\n")
    os.symlink("python3.13", root / "usr" / "bin" / "python3")
    plug = root / "root" / ".config" / "GIMP" / "3.0" / "plug-ins"
    t = hosts.explicit_target("gimp", str(plug))
    assert t.python_versions == ["3.13"]
    assert t.tags() == [vendored.tag_for("3.13", vendored.platform_key())]
    assert hosts.explicit_target("gimp", str(plug), host_python=["3.12"]).python_versions == ["3.12"]


def test_fetch_wheels_downloads_into_an_empty_cache(tmp_path):
    """The real `pip download` for this interpreter's tag (fails with a clear message without PyPI)."""
    files = wheels.fetch_wheels(Ops(verbose=False), TAG, cache=str(tmp_path))
    names = sorted(os.path.basename(f).split("-")[0] for f in files)
    assert names == ["msgpack", "pyzmq"]
    pins = requirements.pins(venv.REQUIREMENTS)
    assert all(f"-{pins[n]}-" in os.path.basename(f) for n, f in zip(["msgpack", "pyzmq"], sorted(files)))
    # a second call is served from the cache without pip
    assert wheels.fetch_wheels(Ops(verbose=False), TAG, cache=str(tmp_path)) == files


def test_full_install_check_rerun_and_uninstall(tmp_path, fake_bin, plugin_src):
    home = _fake_home(tmp_path)
    r = _run_install(["--no-venv", "--plugin-src", str(plugin_src)], home, fake_bin)
    assert r.returncode == 0, r.stdout + r.stderr

    gimp = home / ".config" / "GIMP" / "3.0" / "plug-ins" / "facesketch"
    script = gimp / "facesketch.py"
    assert os.access(script, os.X_OK)
    data = script.read_bytes()
    assert data.startswith(b"#!") and b"python3" in data.splitlines()[0] and b"\r\n" not in data
    assert (gimp / "facesketch_client" / "settings.py").is_file()
    assert not list(gimp.rglob("__pycache__"))
    for f in (plugin_src / "gimp" / "facesketch").iterdir():
        assert (gimp / f.name).exists()
    pykrita = home / ".local" / "share" / "krita" / "pykrita"
    assert (pykrita / "facesketch.desktop").is_file()
    assert (pykrita / "facesketch" / "__init__.py").is_file()
    assert (pykrita / "facesketch" / "facesketch_client" / "vendored.py").is_file()
    kritarc = (home / ".config" / "kritarc").read_text()
    assert "[python]" in kritarc and "enable_facesketch=true" in kritarc
    for plug in (gimp, pykrita / "facesketch"):
        assert TAG in vendored.available_tags(str(plug)), plug
        assert (plug / "_vendor" / TAG / "zmq" / "__init__.py").is_file()
        assert (plug / "_vendor" / TAG / "msgpack" / "__init__.py").is_file()
        assert json.loads((plug / ".facesketch-install.json").read_text())["vendored"]

    settings_file = home / ".config" / "facesketch" / "settings.json"
    s = json.loads(settings_file.read_text())
    script = venv.venv_script(os.path.join(REPO, ".venv"))  # <repo>/.venv/bin/facesketch
    assert s["backend_command"] == [script, "serve"]
    assert s["address"] == "tcp://127.0.0.1:5557"

    r = _run_install(["--check", "--no-venv", "--plugin-src", str(plugin_src)], home, fake_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    assert str(gimp) in r.stdout and str(pykrita / "facesketch") in r.stdout and TAG in r.stdout
    assert str(settings_file) in r.stdout
    # an install older than the checkout is reported
    (gimp / "facesketch_client" / "settings.py").write_text("# old\n")
    r = _run_install(["--check", "--no-venv", "--plugin-src", str(plugin_src)], home, fake_bin)
    assert r.returncode == 1 and "older than this checkout (settings.py)" in r.stdout, r.stdout

    # the user's edits survive a re-run; a backend_command an older install wrote (the venv's python
    # running `-m backend serve`) becomes the console script, keeping the arguments the user added
    s["address"] = "tcp://192.168.7.7:6000"
    s["backend_command"] = [venv.venv_python(os.path.join(REPO, ".venv")), "-m", "backend", "serve", "--device", "cpu"]
    settings_file.write_text(json.dumps(s))
    r = _run_install(["--check", "--no-venv", "--plugin-src", str(plugin_src)], home, fake_bin)
    assert r.returncode == 1 and "written by an older install" in r.stdout, r.stdout
    r = _run_install(["--no-venv", "--plugin-src", str(plugin_src)], home, fake_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    s2 = json.loads(settings_file.read_text())
    assert s2["address"] == "tcp://192.168.7.7:6000"
    assert s2["backend_command"] == [script, "serve", "--device", "cpu"]
    s2["backend_command"] = ["/usr/local/bin/my-backend", "--fast"]  # a command of the user's own: kept
    settings_file.write_text(json.dumps(s2))
    assert _run_install(["--no-venv", "--plugin-src", str(plugin_src)], home, fake_bin).returncode == 0
    assert json.loads(settings_file.read_text())["backend_command"] == ["/usr/local/bin/my-backend", "--fast"]
    assert kritarc == (home / ".config" / "kritarc").read_text()  # enabled once, not twice

    # a folder of the same name that install.py did not make is left alone by --uninstall
    foreign = home / ".config" / "GIMP" / "3.0" / "plug-ins" / "other"
    foreign.mkdir()
    r = _run_install(["--uninstall", "--no-venv"], home, fake_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not gimp.exists() and not (pykrita / "facesketch").exists() and not (pykrita / "facesketch.desktop").exists()
    assert "enable_facesketch" not in (home / ".config" / "kritarc").read_text()
    assert foreign.is_dir()
    assert settings_file.is_file()  # kept without --purge
    r = _run_install(["--check", "--no-venv"], home, fake_bin)
    assert r.returncode == 1 and "not installed" in r.stdout
    r = _run_install(["--uninstall", "--purge", "--no-venv"], home, fake_bin,
                     {"FACESKETCH_WHEEL_CACHE": str(tmp_path / "purged-cache")})
    assert r.returncode == 0, r.stdout + r.stderr
    assert not settings_file.exists()


def test_dry_run_changes_nothing(tmp_path, fake_bin, plugin_src):
    home = _fake_home(tmp_path)
    before = _snapshot(home)
    venv = tmp_path / "no-venv-yet"
    cache = tmp_path / "empty-cache"
    r = _run_install(["--dry-run", "--venv", str(venv), "--plugin-src", str(plugin_src)], home, fake_bin,
                     {"FACESKETCH_WHEEL_CACHE": str(cache)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert _snapshot(home) == before
    assert not venv.exists() and not cache.exists()
    out = r.stdout
    assert "[dry-run] would run" in out and "-m venv" in out and "pip install" in out and "torch==" in out
    assert "pip install --no-deps -e " + REPO in out
    assert "pip download" in out and f"--python-version {PYVER}" in out
    assert "plug-ins/facesketch" in out and "pykrita/facesketch" in out and "settings.json" in out
    # an installed home is not changed by a dry-run uninstall either
    assert _run_install(["--no-venv", "--plugin-src", str(plugin_src)], home, fake_bin).returncode == 0
    before = _snapshot(home)
    r = _run_install(["--dry-run", "--uninstall", "--purge", "--no-venv"], home, fake_bin)
    assert r.returncode == 0 and "[dry-run] would remove" in r.stdout
    assert _snapshot(home) == before


def test_vendored_pyzmq_imports_in_a_python_of_that_version(tmp_path, fake_bin, plugin_src):
    """Import zmq and msgpack from the installed plug-in with no site-packages at all (-S -I), the
    way a host's Python without them would, for every interpreter here whose version was vendored."""
    home = _fake_home(tmp_path)
    dest = home / ".local" / "share" / "krita" / "pykrita"
    # other interpreters on this machine (on PATH or under pyenv) make the check cover more versions
    others = {}
    for py in [shutil.which(f"python3.{m}") for m in range(10, 14)] + \
            sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-3]*/bin/python3"))):
        v = py and hosts.python_version_of(py)
        if v and v != PYVER and v not in others:
            others[v] = py
    extra = set(others)
    versions = sorted({PYVER} | extra)
    plugins.install_krita_plugin(str(dest), plugins.python_tags_for(versions), str(home / ".config" / "kritarc"),
                                 source=str(plugin_src / "krita"), client_source=str(plugin_src / "facesketch_client"))
    plug = dest / "facesketch"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import vendored; "
            "d = vendored.add_vendored_wheels(sys.argv[2]); import zmq, msgpack; "
            "assert zmq.__file__.startswith(d), zmq.__file__; "
            "ctx = zmq.Context(); s = ctx.socket(zmq.DEALER); s.close(); ctx.term(); "
            "print(d, zmq.pyzmq_version(), msgpack.unpackb(msgpack.packb([1, 'a'])))")
    pythons = [sys.executable] + [others[v] for v in sorted(others)]
    if os.path.exists("/usr/bin/python3"):
        pythons.append("/usr/bin/python3")  # the system Python that distro GIMP and Krita use
    checked = set()
    for py in pythons:
        v = hosts.python_version_of(py)
        if v not in versions:
            continue
        r = subprocess.run([py, "-I", "-S", "-c", code, str(plug / "facesketch_client"), str(plug)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{py}: {r.stderr}"
        assert str(plug / "_vendor" / vendored.tag_for(v, vendored.platform_key())) in r.stdout
        checked.add(v)
    assert checked == set(versions)
    # and without vendored wheels for its version, the plug-in gets a sentence, not a traceback
    msg = vendored.missing_dependency_message(str(tmp_path))
    assert PYVER in msg and "install.py" in msg


def test_gimp_script_is_made_runnable(tmp_path):
    src = tmp_path / "src" / "facesketch"
    src.mkdir(parents=True)
    (src / "facesketch.py").write_bytes(b"print('x')\r\n")
    (src / "any_helper_name.py").write_text("Y = 2\n")  # whatever modules the folder holds are copied
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "any_helper_name.cpython-311.pyc").write_bytes(b"")
    client = tmp_path / "client"
    client.mkdir()
    (client / "__init__.py").write_text("")
    plugins.install_gimp_plugin(str(tmp_path / "plug-ins"), [], source=str(src), client_source=str(client))
    script = tmp_path / "plug-ins" / "facesketch" / "facesketch.py"
    assert script.read_bytes() == b"#!/usr/bin/env python3\nprint('x')\n"
    assert os.stat(script).st_mode & 0o111 == 0o111
    assert (tmp_path / "plug-ins" / "facesketch" / "any_helper_name.py").read_text() == "Y = 2\n"
    assert not (tmp_path / "plug-ins" / "facesketch" / "__pycache__").exists()
    # re-installing replaces the folder completely (no stale files, no leftovers beside it)
    (tmp_path / "plug-ins" / "facesketch" / "stale.py").write_text("")
    plugins.install_gimp_plugin(str(tmp_path / "plug-ins" / "facesketch"), [], source=str(src),
                                client_source=str(client))
    assert not (tmp_path / "plug-ins" / "facesketch" / "stale.py").exists()
    assert sorted(os.listdir(tmp_path / "plug-ins")) == ["facesketch"]


def test_kritarc_edit_keeps_the_rest_of_the_file(tmp_path):
    rc = tmp_path / "kritarc"
    original = "[General]\nfoo=bar\n\n[python]\nenable_other=true\n\n[Theme]\nname=Dark\n"
    rc.write_text(original)
    ops = Ops(verbose=False)
    plugins.set_kritarc_enabled(ops, str(rc), True)
    text = rc.read_text()
    assert "[python]\nenable_other=true\nenable_facesketch=true\n" in text and "name=Dark" in text
    assert plugins.kritarc_enabled(str(rc))
    plugins.set_kritarc_enabled(ops, str(rc), True)
    assert rc.read_text() == text
    plugins.set_kritarc_enabled(ops, str(rc), False)
    assert rc.read_text() == original
    assert not plugins.kritarc_enabled(str(rc))


def test_ray_option_installs_the_scale_out_requirements(tmp_path, fake_bin):
    pins = requirements.pins(venv.REQUIREMENTS_RAY)
    assert "ray" in pins and pins["torch"] == requirements.pins(venv.REQUIREMENTS)["torch"]
    assert requirements.pins(venv.REQUIREMENTS_TEST)["ray"] == pins["ray"]  # the tests use the same Ray
    r = _run_install(["--dry-run", "--ray", "--hosts", "none", "--venv", str(tmp_path / "v")], _fake_home(tmp_path),
                     fake_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "requirements-ray.txt" in r.stdout and "pip install -r " + venv.REQUIREMENTS_RAY in r.stdout


def test_requirements_pins_and_the_dev_venv_satisfies_them():
    pins = requirements.pins(venv.REQUIREMENTS_TEST)
    for name in ("torch", "numpy", "pillow", "pyzmq", "msgpack", "safetensors", "tqdm", "pytest",
                 "pytest-timeout", "pytorch-msssim"):
        assert name in pins, name
    assert pins["torch"] == "2.13.0"
    lines = requirements.read_requirements(venv.REQUIREMENTS_TEST)
    info = requirements.probe_venv(sys.executable, lines)
    assert info["unmet"] == []  # judged by packaging inside that environment
    assert requirements.unmet_requirements(info, lines) == []
    assert "torchvision" not in info["have"]
    # the torch build: CPU on Linux without a driver (local wheel first), CUDA from PyPI with one
    cpu = venv.torch_install_attempts("2.13.0", cuda=False, sys_platform="linux")
    assert cpu[0] == ("torch==2.13.0+cpu", [], {})
    cuda = venv.torch_install_attempts("2.13.0", cuda=True, sys_platform="linux")
    assert cuda == [("torch==2.13.0", [], {"PIP_FIND_LINKS": ""})]
    cpu_torch = {"have": {"torch": "2.13.0+cpu"}}
    assert requirements.unmet_requirements(cpu_torch, ["torch==2.13.0"]) == []
    assert requirements.unmet_requirements(cpu_torch, ["torch==2.13.0"], cuda=True) == \
        ["torch==2.13.0 with CUDA (found the CPU build 2.13.0+cpu)"]
    assert requirements.unmet_requirements({"have": {"torch": "2.13.0+cpu", "torchvision": "0.1"}}, ["torch==2.13.0"]) \
        == ["torchvision must not be installed (found 0.1)"]


def test_requirement_specifiers_are_judged_by_packaging_in_the_environment():
    """Markers and specifiers are judged by `packaging` inside the probed interpreter (its own copy
    or pip's); the stdlib fallback judges only names and exact pins and leaves the rest to pip."""
    have = requirements.probe_venv(sys.executable)["have"]
    lines = ["numpy<2", 'numpy>=1 ; python_version < "3"', "Pillow>=1.0", "tqdm!=0.1,>=0.1",
             "no-such-package-here==1.0", "safetensors[torch]==" + have["safetensors"]]
    info = requirements.probe_venv(sys.executable, lines)
    assert info["unmet"] is not None
    assert requirements.unmet_requirements(info, lines) == [
        f"numpy<2 (found {have['numpy']})", "no-such-package-here==1.0 (missing)"]
    # without packaging (no "unmet" from the probe): the small fallback
    bare = {"have": {"numpy": "2.4.6", "pillow": "13.0.0", "torch": "2.13.0+cpu", "tqdm": "4.70.1"}}
    assert requirements.unmet_requirements(bare, ["Pillow", "torch==2.13", "tqdm==4.70.1", "safetensors==0.8.0",
                                                  "numpy<2", "tqdm==4.70.2"]) == [
        "safetensors==0.8.0 (missing)", "numpy<2 (left to pip)", "tqdm==4.70.2 (found 4.70.1)"]


def test_venv_is_created_then_left_alone(tmp_path):
    """A small venv end to end (the torch step is the same code with another requirement file):
    `pip install -r`, then the project editable (the `facesketch` command); an old install's
    facesketch.pth is removed; a second run does nothing."""
    req = tmp_path / "requirements.txt"
    req.write_text("msgpack==%s\n" % requirements.pins(venv.REQUIREMENTS)["msgpack"])
    where = tmp_path / "venv"
    py = venv.ensure_venv(Ops(verbose=False), str(where), str(req), cuda=False)
    assert os.path.isfile(venv.venv_script(str(where)))
    r = subprocess.run([py, "-c", "import importlib.util as u, msgpack; "
                            "print(u.find_spec('facesketch.backend').origin); print(u.find_spec('facesketch_client').origin)"],
                       capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr  # the editable install makes the checkout importable from any folder
    backend_init, client_init = r.stdout.split()
    assert backend_init == os.path.join(REPO, "backend", "__init__.py")
    assert client_init == os.path.join(REPO, "plugin", "facesketch_client", "__init__.py")
    info = requirements.probe_venv(py)
    assert venv.editable_from_repo(info)
    old_pth = os.path.join(info["purelib"], venv.OLD_PTH)
    with open(old_pth, "w") as fh:  # what installs before the editable install left behind
        fh.write(REPO + "\n")
    lines = []

    class Capture(Ops):
        def say(self, msg):
            lines.append(msg)

    venv.ensure_venv(Capture(), str(where), str(req), cuda=False)
    assert not os.path.exists(old_pth)
    assert not any("pip install" in m for m in lines), lines
    lines.clear()
    venv.ensure_venv(Capture(), str(where), str(req), cuda=False)
    assert any("up to date" in m for m in lines), lines
    assert not any("pip install" in m for m in lines)
    assert venv.check_venv(str(where), str(req))[0] == []


def test_settings_backend_command_is_created_migrated_or_kept(tmp_path):
    path = str(tmp_path / "settings.json")
    env = str(tmp_path / ".venv")
    script = venv.venv_script(env)
    ops = Ops(verbose=False)
    installer_settings.write_default_settings(ops, path, env, create_only=True)  # --test creates a missing file
    assert json.loads(open(path).read())["backend_command"] == [script, "serve"]
    assert venv.venv_script(env, windows=True) == os.path.join(env, "Scripts", "facesketch.exe")
    for old, new in ((["/x/.venv/bin/python", "-m", "backend", "serve"], [script, "serve"]),
                     (["/x/.venv/bin/python3.11", "-m", "facesketch", "serve", "--device", "cpu"],
                      [script, "serve", "--device", "cpu"]),
                     (["/moved/.venv/bin/facesketch", "serve", "--max-pixels", "9"], [script, "serve", "--max-pixels", "9"]),
                     (["/usr/local/bin/my-backend", "--fast"], ["/usr/local/bin/my-backend", "--fast"])):
        with open(path, "w") as fh:
            json.dump({"backend_command": old, "address": "tcp://127.0.0.1:7000"}, fh)
        installer_settings.write_default_settings(ops, path, env, create_only=True)  # --test: left exactly alone
        assert json.loads(open(path).read())["backend_command"] == old
        installer_settings.write_default_settings(ops, path, env)
        s = json.loads(open(path).read())
        assert s["backend_command"] == new and s["address"] == "tcp://127.0.0.1:7000"


def test_pytest_finding_no_tests_counts_as_failure(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert testing.run_pytest(Ops(verbose=False), sys.executable, ["-q", "-p", "no:cacheprovider",
                                                                   "--rootdir", str(empty), str(empty)]) == 1
