"""Real GIMP 3 in the cached trixie chroot, with our plug-in installed by install.py's own code.

One `GimpSession` = a fresh GIMP profile (HOME) inside the chroot, so no stale pluginrc; the
plug-in is installed there exactly as `python3 install.py --gimp-dir ...` would, with pyzmq/msgpack
wheels for the chroot's Python (Debian's python3-zmq is deliberately not installed in the chroot).
GIMP runs headless (gimp-console-3.0 + python-fu-eval + driver.py) or, for screenshots, with its
GUI under Xvfb.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time

try:  # imported as tests' gimp_host.harness (pytest), or as a top-level module by make_docs_images.py
    from . import chroot
except ImportError:
    import chroot  # noqa: F401  (the script's own folder is sys.path[0])

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def load_install_module():
    """The installer functions the test exercises (facesketch/installer/; install.py is its command line)."""
    import types
    from facesketch.installer import hosts, plugins, wheels
    return types.SimpleNamespace(python_in_root=hosts.python_in_root, python_tags_for=wheels.python_tags_for,
                                 install_gimp_plugin=plugins.install_gimp_plugin)


def fs2k_sample(kind: str) -> str | None:
    """An FS2K test-split `kind` ("photo" or "sketch") image: the shipped samples, else the shared dataset."""
    import glob
    for folder in (os.path.join(REPO, "tests", "data", "fs2k_samples"),
                   os.path.join(os.path.dirname(REPO), "shared", "datasets", "fs2k")):
        hits = sorted(glob.glob(os.path.join(folder, kind, f"{kind}*", "*.jpg")))
        if hits:
            return hits[0]
    return None


class GimpSession:
    def __init__(self, root: str):
        self.root = root
        self.base = tempfile.mkdtemp(prefix="facesketch-gimp-", dir=os.path.join(root, "tmp"))
        os.chmod(self.base, 0o755)
        self.inside = "/tmp/" + os.path.basename(self.base)  # the same folder as seen from inside
        for sub in ("home", "in", "out"):
            os.makedirs(os.path.join(self.base, sub))
        self.home = self.inside + "/home"
        self.plugin_dir = None
        self.log_lines: list[str] = []

    def host_path(self, inside_path: str) -> str:
        return os.path.join(self.root, inside_path.lstrip("/"))

    # -- install ---------------------------------------------------------------------------
    def install_plugin(self) -> str:
        install = load_install_module()
        versions = install.python_in_root(self.root, "gimp") or ["3.13"]
        tags = install.python_tags_for(versions)
        plugins = self.host_path(self.home + "/.config/GIMP/3.0/plug-ins")
        self.plugin_dir = install.install_gimp_plugin(plugins, tags)
        self.python_tags = tags
        return self.plugin_dir

    def write_settings(self, **values) -> str:
        """The settings file as the plug-in sees it ($HOME/.config/facesketch/settings.json)."""
        path = self.host_path(self.home + "/.config/facesketch/settings.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(values, f)
        return path

    def put(self, name: str, data: bytes) -> str:
        """A file in the session's in/ folder; returns its path inside the chroot."""
        with open(os.path.join(self.base, "in", name), "wb") as f:
            f.write(data)
        return f"{self.inside}/in/{name}"

    # -- headless batch --------------------------------------------------------------------
    def run_driver(self, scenarios: list, tag: str = "run", timeout: int = 420) -> dict:
        """Run driver.py in gimp-console-3.0 with these scenarios; returns the driver's report."""
        out_inside = f"{self.inside}/out/{tag}"
        os.makedirs(self.host_path(out_inside), exist_ok=True)
        shutil.copy(os.path.join(HERE, "driver.py"), os.path.join(self.base, "in", "driver.py"))
        config = self.put(f"{tag}.json", json.dumps({"out": out_inside, "scenarios": scenarios}).encode())
        env = {"HOME": self.home, "FS_DRIVER_CONFIG": config}
        argv = ["timeout", str(timeout - 10), "gimp-console-3.0", "-i", "-n", "--batch-interpreter=python-fu-eval",
                "-b", f"exec(open('{self.inside}/in/driver.py').read())", "--quit"]
        t0 = time.monotonic()
        with chroot.mounted(self.root):
            proc = subprocess.run(chroot.chroot_cmd(self.root, argv, env), capture_output=True, text=True,
                                  timeout=timeout)
        log = proc.stdout + proc.stderr
        self.log_lines.append(f"--- {tag}: exit {proc.returncode} after {time.monotonic() - t0:.1f} s\n{log}")
        with open(os.path.join(self.base, "out", f"{tag}.log"), "w") as f:
            f.write(log)
        report_path = self.host_path(out_inside + "/report.json")
        if not os.path.exists(report_path):
            raise AssertionError(f"GIMP wrote no report (exit {proc.returncode}); its output:\n{log[-6000:]}")
        with open(report_path) as f:
            report = json.load(f)
        report["exit_code"] = proc.returncode
        report["wall_s"] = round(time.monotonic() - t0, 1)
        report["out_dir"] = self.host_path(out_inside)
        report["log"] = log
        return report

    def kill_plugin_when_asked(self, tag: str = "run", delay_s: float = 1.5) -> threading.Thread:
        """Play the user pressing cancel in GIMP's progress bar (GIMP then kills the plug-in process):
        when the driver writes out/<tag>/kill-plugin, SIGKILL our facesketch.py process after delay_s.
        Returns the watcher thread; its .killed says whether it found and killed one."""
        marker = self.host_path(f"{self.inside}/out/{tag}/kill-plugin")
        thread = threading.Thread(target=self._kill_watch, args=(marker, delay_s), daemon=True)
        thread.killed = None
        thread.start()
        return thread

    def _kill_watch(self, marker: str, delay_s: float) -> None:
        deadline = time.monotonic() + 600
        while not os.path.exists(marker):
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)
        time.sleep(delay_s)
        me = threading.current_thread()
        for pid in _session_processes(self.root, self.home):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"facesketch/facesketch.py" in f.read():
                        os.kill(pid, 9)
                        me.killed = pid
            except OSError:
                pass

    def read_out(self, report: dict, name: str) -> bytes:
        with open(os.path.join(report["out_dir"], name), "rb") as f:
            return f.read()

    # -- GUI under Xvfb (screenshots) ------------------------------------------------------
    def screenshot_dialog(self, gui_script: str, window_title: str, png_path: str, display: int = 91,
                          timeout: float = 180.0) -> dict:
        """Start GIMP's GUI under Xvfb running `gui_script` (python-fu-eval code that opens a dialog),
        wait for a window titled `window_title`, save it (xwd) as PNG, then stop GIMP and Xvfb."""
        script = self.put("gui.py", gui_script.encode())
        env = {"HOME": self.home, "DISPLAY": f":{display}", "NO_AT_BRIDGE": "1", "GTK_THEME": "Adwaita"}
        procs = []
        info = {}
        with chroot.mounted(self.root):
            try:
                xvfb = subprocess.Popen(chroot.chroot_cmd(self.root, ["Xvfb", f":{display}", "-screen", "0",
                                                                      "1280x860x24", "-nolisten", "tcp"], env),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(xvfb)
                time.sleep(2)
                gimp = subprocess.Popen(chroot.chroot_cmd(self.root, [
                    "gimp-3.0", "-n", "--no-splash", "--batch-interpreter=python-fu-eval",
                    "-b", f"exec(open('{script}').read())"], env),
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.base, "out", "gui.log"), "w"))
                procs.append(gimp)
                window = None
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and window is None:
                    time.sleep(2)
                    tree = subprocess.run(chroot.chroot_cmd(self.root, ["xwininfo", "-root", "-tree"], env),
                                          capture_output=True, text=True).stdout
                    for line in tree.splitlines():
                        if f'"{window_title}"' in line:
                            window = line.split()[0]
                            break
                if window is None:
                    raise AssertionError(f"no window titled {window_title!r} appeared within {timeout:g} s")
                time.sleep(3)  # let it finish drawing
                shot = f"{self.inside}/out/dialog.xwd"
                subprocess.run(chroot.chroot_cmd(self.root, ["sh", "-c", f"xwd -id {window} -silent > {shot}"], env),
                               check=True)
                with open(self.host_path(shot), "rb") as f:
                    image = xwd_to_pil(f.read())
                image.save(png_path)
                info = {"window": window, "size": image.size}
            finally:
                for p in reversed(procs):
                    if p.poll() is None:
                        p.terminate()
                        try:
                            p.wait(10)
                        except subprocess.TimeoutExpired:
                            p.kill()
                            p.wait()
                # plug-in processes of that GIMP may linger: end them (ours only: this session's HOME)
                _kill_session_processes(self.root, self.home)
        return info

    def cleanup(self) -> None:
        chroot.unmount_all(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def _session_processes(root: str, home: str) -> list[int]:
    """Pids of processes inside the chroot that run with this session's HOME (GIMP and its plug-ins)."""
    real = os.path.realpath(root)
    marker = f"HOME={home}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.path.realpath(f"/proc/{pid}/root") != real:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def _kill_session_processes(root: str, home: str) -> None:
    """End this session's leftover processes inside the chroot (GIMP's plug-ins), by pid."""
    for pid in _session_processes(root, home):
        try:
            os.kill(pid, 15)
        except OSError:
            pass


def xwd_to_pil(data: bytes):
    """Decode a 24/32-bit TrueColor ZPixmap XWD file (what `xwd` writes on Xvfb) into a PIL RGB image."""
    from PIL import Image

    fields = struct.unpack(">25I", data[:100])
    header_size, _version, pixmap_format, depth, width, height = fields[:6]
    byte_order, bits_per_pixel, bytes_per_line = fields[7], fields[11], fields[12]
    red_mask, green_mask, blue_mask = fields[14], fields[15], fields[16]
    ncolors = fields[19]
    if pixmap_format != 2 or bits_per_pixel != 32:
        raise ValueError(f"unsupported XWD: format {pixmap_format}, {bits_per_pixel} bits per pixel")
    offset = header_size + ncolors * 12
    raw = data[offset: offset + bytes_per_line * height]
    # 32-bit pixels, masks 0xff0000/0xff00/0xff; byte_order 0 = LSB first -> bytes B, G, R, X
    mode = "BGRX" if byte_order == 0 else "XRGB"
    assert (red_mask, green_mask, blue_mask) == (0xFF0000, 0xFF00, 0xFF), "unexpected XWD colour masks"
    return Image.frombuffer("RGB", (width, height), raw, "raw", mode, bytes_per_line, 1)
