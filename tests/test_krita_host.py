"""The Krita plug-in in real Krita 5: installed by install.py, driven through its docker, against a real backend.

What happens (about a minute; the apt install adds ~30 s the first time):
1. Krita, PyQt5, Xvfb come from apt (Debian's krita package, like ../shared/hosts/krita). pyzmq and
   msgpack deliberately do NOT: install.py must vendor wheels for Krita's own Python.
2. install.py's own code finds Krita for a temporary HOME, installs the plug-in into its pykrita folder
   and enables it in its kritarc. The shared settings file in that HOME points at
3. a backend started here on a free loopback port (`.venv/bin/facesketch serve`).
4. Krita runs under Xvfb with FACESKETCH_KRITA_SCENARIO set: the plug-in plays the scenario in
   plugin/krita/facesketch/scenario.py through the docker's widgets and actions (new face canvas,
   strokes, Generate, live mode with superseding, shadow guide, Keep, Sketchify, bad inputs, the backend
   stopped), writes a JSON report of named checks and quits. Krita exits 0 whatever happens inside, so
   the report is the verdict; a watchdog kills Krita if the scenario hangs.

Set FACESKETCH_SCREENSHOT_DIR to keep the screenshots (docs/krita-docker.png and docs/krita-docker-face.png are
made that way; the face one then shows tests/data/rough_sketch.png drawn in the Sketch layer).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

import install  # repo root is on sys.path (conftest.py)

pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APT_PACKAGES = ["krita", "python3-pyqt5", "xvfb", "xauth"]
KRITA_TIME_LIMIT_S = 300       # watchdog for the whole Krita run
SCENARIO_TIME_LIMIT_S = 240    # the plug-in's own limit; it then writes the report and quits
SCENARIO_START_LIMIT_S = 150   # Krita's first start on a new HOME takes ~35 s on 2 busy cores


def _apt_install(packages) -> str:
    """Install packages with apt-get; returns '' on success or why it could not."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available (not a Debian-like system)"
    if os.geteuid() != 0:
        return "installing Krita with apt needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # wait for the dpkg lock rather than fail when another apt run holds it
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends", *packages]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:  # a clean machine may have no package lists yet
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"], env=env, capture_output=True, text=True)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        return "apt-get install failed: " + (r.stderr or r.stdout).strip()[-300:]
    return ""


@pytest.fixture(scope="module")
def krita_installed():
    if not sys.platform.startswith("linux"):
        pytest.skip("the Krita host test runs on Linux (Debian's krita package under Xvfb)")
    missing = [p for p, exe in (("krita", "krita"), ("xvfb", "xvfb-run"), ("xauth", "xauth"))
               if shutil.which(exe) is None]
    if missing or not os.path.exists("/usr/lib/python3/dist-packages/PyQt5"):
        why = _apt_install(APT_PACKAGES)
        if why:
            pytest.skip(f"Krita cannot be installed here: {why}")
    for exe in ("krita", "xvfb-run"):
        assert shutil.which(exe), f"{exe} missing after installing {APT_PACKAGES}"
    return shutil.which("krita")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def backend(tmp_path):
    """A real backend on loopback, as a user starts it; the scenario stops it on purpose near the end."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    python = os.path.join(ROOT, ".venv", "bin", "python")
    if not os.path.exists(python):
        python = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACESKETCH_")}
    env.update(FACESKETCH_SETTINGS=str(tmp_path / "backend-settings.json"), XDG_STATE_HOME=str(tmp_path / "state"),
               PYTHONUNBUFFERED="1")
    log = open(tmp_path / "backend.log", "wb")
    proc = subprocess.Popen([python, "-m", "facesketch", "serve", "--bind", address], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=log)
    line = proc.stdout.readline().decode()
    if "ready on" not in line:
        proc.kill()
        log.close()
        raise RuntimeError(f"backend did not start: {line!r}\n{(tmp_path / 'backend.log').read_text()}")
    yield {"address": address, "pid": proc.pid, "proc": proc, "log": tmp_path / "backend.log"}
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()
    log.close()


def _install_plugin(home: str) -> dict:
    """install.py's own detection and installer, pointed at a temporary HOME."""

    targets = [t for t in install.detect_hosts(home=home) if t.host == "krita" and t.variant == "native"]
    assert targets, "install.py did not find the apt-installed Krita"
    t = targets[0]
    folder = install.install_krita_plugin(t.plugin_root, t.tags(), kritarc=t.kritarc)
    return {"target": t, "folder": folder, "tags": t.tags()}


def _run_krita(home: str, config_path: str, log_path: str, started_path: str) -> tuple:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FACESKETCH_", "XDG_", "PYTHON", "QT_")) and k != "DISPLAY"}
    # Krita's embedded Python finds its home through the python3 on PATH: a pyenv/venv python3 first on PATH
    # (as when pytest runs under `install.py --test` from a pyenv shell) gives it a stdlib without the
    # system's dist-packages, and `import PyQt5` fails inside Krita. Use the system's PATH.
    env.update(HOME=home, FACESKETCH_KRITA_SCENARIO=config_path, PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "krita", "--nosplash"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        rc = None
        while rc is None:  # watchdog: Krita or the scenario hung, or the plug-in never loaded
            try:
                rc = proc.wait(1)
            except subprocess.TimeoutExpired:
                waited = time.monotonic() - t0
                why = ("the scenario did not finish" if waited > KRITA_TIME_LIMIT_S else
                       "the plug-in never started the scenario" if waited > SCENARIO_START_LIMIT_S
                       and not os.path.exists(started_path) else None)
                if why:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    rc = f"killed by the watchdog after {waited:.0f} s: {why}"
    return rc, time.monotonic() - t0


def _kill_autostarted(home: str) -> None:
    from facesketch_client import settings as fs_settings
    pid_file = os.path.join(fs_settings.state_dir(home=home), "backend.pid")
    try:
        with open(pid_file) as fh:
            os.kill(int(fh.read().strip()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def test_face_sketch_docker_in_real_krita(krita_installed, backend, tmp_path):
    home = str(tmp_path / "home")
    os.makedirs(home)
    t0 = time.monotonic()
    installed = _install_plugin(home)
    t_install = time.monotonic() - t0
    t = installed["target"]
    assert t.python_versions, f"install.py could not tell which Python Krita embeds: {t.describe()}"
    assert os.path.isdir(os.path.join(installed["folder"], "_vendor", installed["tags"][0])), installed["tags"]
    with open(t.kritarc) as fh:
        assert "enable_facesketch=true" in fh.read()

    # the shared settings file in the temporary HOME points at our backend
    from facesketch_client import settings as fs_settings
    settings = fs_settings.Settings(address=backend["address"], autostart=False, timeout_s=30.0)
    fs_settings.save(settings, fs_settings.path(home=home))

    report_path = str(tmp_path / "report.json")
    shots = os.environ.get("FACESKETCH_SCREENSHOT_DIR") or str(tmp_path / "shots")
    # what install.py writes as the auto-start command (the scenario starts and stops one from the settings dialog)
    venv = os.path.join(ROOT, ".venv")
    command = install.default_backend_command(venv) if os.path.isdir(venv) else [sys.executable, "-m", "facesketch", "serve"]
    config = {"report": report_path, "backend_pid": backend["pid"], "screenshot_dir": shots, "quit": True,
              "time_limit_s": SCENARIO_TIME_LIMIT_S, "backend_command": command}
    if os.environ.get("FACESKETCH_SCREENSHOT_DIR"):  # docs run: the face screenshot shows a whole drawn face
        config["docs_sketch"] = os.path.join(ROOT, "tests", "data", "rough_sketch.png")
    config_path = str(tmp_path / "scenario.json")
    with open(config_path, "w") as fh:
        json.dump(config, fh)

    try:
        rc, seconds = _run_krita(home, config_path, str(tmp_path / "krita.log"), report_path + ".started")
    finally:  # a backend the scenario auto-started must not outlive a failed run
        _kill_autostarted(home)
    log_tail = (tmp_path / "krita.log").read_text(errors="replace")[-3000:]
    assert os.path.exists(report_path), f"Krita (rc {rc}) wrote no scenario report; its log ends:\n{log_tail}"
    with open(report_path) as fh:
        report = json.load(fh)
    failed = [c for c in report["checks"] if not c["ok"]]
    summary = "\n".join(f"{'ok ' if c['ok'] else 'BAD'} {c['name']}" + ("" if c["ok"] else f": {c['detail']}")
                        for c in report["checks"])
    print(f"install {t_install:.1f} s, Krita run {seconds:.1f} s (scenario {report.get('seconds')} s), rc {rc}")
    print(summary)
    print("\n".join(report["events"]))
    assert report["error"] is None, report["error"] + "\n" + summary
    assert not failed, summary + "\n" + "\n".join(report["events"])
    assert len(report["checks"]) >= 40, summary  # the scenario ran to its end
    assert rc == 0, f"Krita exited with {rc}"

    # the plug-in used the wheels install.py vendored for Krita's Python, and the settings in the temp HOME
    env = report["environment"]
    assert os.sep + "_vendor" + os.sep in env["zmq_file"], env
    assert os.sep + "_vendor" + os.sep in env["msgpack_file"], env
    assert env["settings_path"] == fs_settings.path(home=home), env
    assert env["address"] == backend["address"], env
    assert env["plugin_file"].startswith(installed["folder"]), env

    # live mode: at least one job superseded, and every result the plug-in showed was the newest one
    states = [e["state"] for e in report["face_log"]]
    assert "superseded" in states, states
    assert "stale" not in states, states

    shot = os.path.join(shots, "krita-docker.png")
    assert os.path.getsize(shot) > 20000, "screenshot missing or blank"
