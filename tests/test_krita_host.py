"""The Krita plug-in in real Krita 5: installed by the installer, driven through its docker, against real backends.

What happens (two to three minutes; the apt install adds ~30 s the first time):
1. Krita, PyQt5, Xvfb come from apt (Debian's krita package). pyzmq and msgpack deliberately do NOT: the
   installer must vendor wheels for Krita's own Python.
2. The installer's own code finds Krita for a temporary HOME, installs the plug-in into its pykrita folder and
   enables it in its kritarc. Next to it, in that HOME only, goes the test-only plug-in tests/krita_host/
   (facesketch_scenario): nothing of the tests ships in the user's plug-in.
3. Three backends on free loopback ports (`facesketch serve`): "not_ready" (an empty FACESKETCH_WEIGHTS_DIR, so
   the real face and sketch engines are not ready), "echo" (tests/support/engines_host_echo.py stands in for the
   face and sketch engines: byte-exact checks, a journal of what they received, a delay the scenario sets) and
   "real" (the shipped weights). The shared settings file in the HOME points at "not_ready".
4. Krita runs under Xvfb with FACESKETCH_KRITA_SCENARIO set: the scenario plug-in plays
   tests/krita_host/facesketch_scenario/scenario.py through the docker's widgets (found by objectName), Krita's
   API and the settings dialog (which also switches between the backends), writes a JSON report of named checks
   and quits. Krita exits 0 whatever happens inside, so the report is the verdict; a watchdog kills Krita if the
   scenario hangs.

Set FACESKETCH_SCREENSHOT_DIR to keep the screenshots (docs/krita-docker.png and docs/krita-docker-face.png are
made that way; the face one then shows tests/data/rough_sketch.png drawn in the Sketch layer).
"""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import BackendProcess

# the installer (install.py is its command line)
from facesketch.installer.hosts import detect_hosts
from facesketch.installer.plugins import install_krita_plugin
from facesketch.installer.settings import default_backend_command

pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIO_PLUGIN = os.path.join(ROOT, "tests", "krita_host")
SCENARIO_NAME = "facesketch_scenario"
APT_PACKAGES = ["krita", "python3-pyqt5", "xvfb", "xauth"]
KRITA_TIME_LIMIT_S = 420       # watchdog for the whole Krita run
SCENARIO_TIME_LIMIT_S = 330    # the scenario's own limit; it then writes the report and quits
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


@pytest.fixture
def backends(tmp_path):
    """The three backends the scenario talks to (see the module docstring), started side by side."""
    empty = tmp_path / "no-weights"
    empty.mkdir()
    echo_dir = tmp_path / "echo"
    echo_dir.mkdir()
    journal, delay = echo_dir / "journal.jsonl", echo_dir / "delay"
    base = {"FACESKETCH_WEIGHTS_DIR": ""}  # the shipped weights unless said otherwise
    made = {
        "not_ready": BackendProcess(_folder(tmp_path / "not_ready"), env=dict(base, FACESKETCH_WEIGHTS_DIR=str(empty))),
        "echo": BackendProcess(echo_dir, ["--log-level", "debug"], env=dict(
            base, FACESKETCH_EXTRA_ENGINES="engines_host_echo,engines_host_echo_sketch",
            FACESKETCH_TEST_JOURNAL=str(journal), FACESKETCH_TEST_DELAY=str(delay))),
        "real": BackendProcess(_folder(tmp_path / "real"), env=base),
    }
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        started = list(pool.map(lambda b: _start(b), made.values()))
    try:
        if not all(started):
            raise RuntimeError("a backend did not start:\n" + "\n".join(
                b.log_path.read_text(errors="replace")[-2000:] for b in made.values()))
        yield {"not_ready": {"address": made["not_ready"].address, "log": str(made["not_ready"].log_path)},
               "echo": {"address": made["echo"].address, "journal": str(journal), "delay_file": str(delay)},
               "real": {"address": made["real"].address, "pid": made["real"].proc.pid}}
    finally:
        for b in made.values():
            if b.proc is not None:
                b.stop()


def _folder(path):
    path.mkdir()
    return path


def _start(b: BackendProcess) -> bool:
    try:
        b.start()
        return True
    except RuntimeError:
        return False


def _install_plugins(home: str) -> dict:
    """The installer's own detection and installer, pointed at a temporary HOME; then the scenario plug-in
    beside the real one, enabled in the same kritarc."""
    targets = [t for t in detect_hosts(home=home) if t.host == "krita" and t.variant == "native"]
    assert targets, "the installer did not find the apt-installed Krita"
    t = targets[0]
    folder = install_krita_plugin(t.plugin_root, t.tags(), kritarc=t.kritarc)
    shutil.copy(os.path.join(SCENARIO_PLUGIN, SCENARIO_NAME + ".desktop"), t.plugin_root)
    shutil.copytree(os.path.join(SCENARIO_PLUGIN, SCENARIO_NAME), os.path.join(t.plugin_root, SCENARIO_NAME),
                    ignore=shutil.ignore_patterns("__pycache__"))
    _enable_in_kritarc(t.kritarc, SCENARIO_NAME)
    return {"target": t, "folder": folder, "tags": t.tags()}


def _enable_in_kritarc(kritarc: str, name: str) -> None:
    """`enable_<name>=true` in kritarc's [python] group (the installer wrote that group for the real plug-in)."""
    with open(kritarc, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    i = lines.index("[python]") + 1
    lines.insert(i, f"enable_{name}=true")
    with open(kritarc, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def _hello(address: str) -> dict:
    from facesketch_client import Client
    with Client(address, timeout_s=30) as c:
        return c.hello()


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
            os.kill(int(fh.readline().strip()), signal.SIGKILL)  # pid, then maybe the address
    except (OSError, ValueError):
        pass


def test_face_sketch_docker_in_real_krita(krita_installed, backends, tmp_path):
    from facesketch_client import settings as fs_settings
    home = str(tmp_path / "home")
    os.makedirs(home)
    t0 = time.monotonic()
    installed = _install_plugins(home)
    t_install = time.monotonic() - t0
    t = installed["target"]
    assert t.python_versions, f"the installer could not tell which Python Krita embeds: {t.describe()}"
    vendor = os.path.join(installed["folder"], "_vendor", installed["tags"][0])
    assert os.path.isdir(vendor), installed["tags"]
    with open(t.kritarc) as fh:
        rc_text = fh.read()
    assert "enable_facesketch=true" in rc_text and f"enable_{SCENARIO_NAME}=true" in rc_text
    # nothing of the tests in the user's plug-in
    shipped = [os.path.relpath(os.path.join(d, f), installed["folder"]) for d, _, fs in os.walk(installed["folder"])
               for f in fs if "_vendor" not in d]
    assert not [f for f in shipped if "scenario" in f.lower()], shipped
    for f in shipped:  # no test hooks, and no sys.path edits but the vendored-wheel loader's
        if f.endswith(".py"):
            with open(os.path.join(installed["folder"], f), encoding="utf-8") as fh:
                text = fh.read()
            assert "FACESKETCH_KRITA_SCENARIO" not in text, f
            if f != os.path.join("facesketch_client", "vendored.py"):
                assert not any(edit in text for edit in ("sys.path.insert", "sys.path.append", "sys.path[:0]")), f
    # the shared settings file in the temporary HOME points at the not-ready backend first
    settings = fs_settings.Settings(address=backends["not_ready"]["address"], autostart=False, timeout_s=30.0)
    fs_settings.save(settings, fs_settings.path(home=home))

    # what the scenario compares with: the face engine's hello details and the not-ready reasons
    nr_engines = {e["name"]: e for e in _hello(backends["not_ready"]["address"])["engines"]}
    assert not nr_engines["face"]["ready"] and not nr_engines["sketch"]["ready"], nr_engines
    real_engines = {e["name"]: e for e in _hello(backends["real"]["address"])["engines"]}
    assert real_engines["face"]["ready"] and real_engines["sketch"]["ready"], "the shipped weights are missing"
    report_path = str(tmp_path / "report.json")
    shots = os.environ.get("FACESKETCH_SCREENSHOT_DIR") or str(tmp_path / "shots")
    # what the installer writes as the auto-start command (the scenario starts and stops one from the settings dialog)
    venv = os.path.join(ROOT, ".venv")
    command = default_backend_command(venv) if os.path.isdir(venv) else [sys.executable, "-m", "facesketch", "serve"]
    config = {"report": report_path, "backends": backends, "screenshot_dir": shots, "quit": True,
              "time_limit_s": SCENARIO_TIME_LIMIT_S, "backend_command": command,
              "backend_pid_file": os.path.join(fs_settings.state_dir(home=home), "backend.pid"),
              "face_details": nr_engines["face"]["details"],
              "not_ready_reasons": {n: nr_engines[n]["reason"] for n in ("face", "sketch")}}
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
    print(f"install {t_install:.1f} s, Krita run {seconds:.1f} s (scenario {report.get('seconds')} s), rc {rc}, "
          f"{len(report['checks'])} checks")
    print(summary)
    print("\n".join(report["events"]))
    assert report["error"] is None, report["error"] + "\n" + summary + "\n" + log_tail
    assert not failed, summary + "\n" + "\n".join(report["events"])
    assert len(report["checks"]) >= 70, summary  # the scenario ran to its end
    assert rc == 0, f"Krita exited with {rc}"

    # the plug-in used the wheels the installer vendored for Krita's Python and the settings in the temporary HOME;
    # its one sys.path entry is that vendor folder, and its modules are importable only as facesketch.*
    env = report["environment"]
    assert env["zmq_file"].startswith(vendor + os.sep) and env["msgpack_file"].startswith(vendor + os.sep), env
    assert env["plugin_file"].startswith(installed["folder"]), env
    assert env["sys_path_in_plugin"] == [vendor], env
    assert not any(env["bare_names"].values()), env
    assert report["settings_file_shown"] == f"Settings file: {fs_settings.path(home=home)}", report["settings_file_shown"]

    # live mode: a running job was cancelled for a newer sketch (the journal of the echo backend says so)
    with open(backends["echo"]["journal"]) as fh:
        journal = [json.loads(line) for line in fh]
    assert any(e["event"] == "cancelled" and e["n"] == report["superseded_job"] for e in journal), journal

    for name in ("krita-docker.png",) + (("krita-docker-face.png",) if config.get("docs_sketch") else ()):
        shot = os.path.join(shots, name)
        assert os.path.exists(shot) and os.path.getsize(shot) > 20000, f"screenshot {name} missing or blank"
