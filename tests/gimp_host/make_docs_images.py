"""Make the README's GIMP pictures with real GIMP 3 (root; uses the cached chroot):

    .venv/bin/python tests/gimp_host/make_docs_images.py [--photo FILE] [--docs docs]

- docs/gimp-sketchify-dialog.png  the Sketchify dialog in GIMP's GUI under Xvfb (xwd of its window)
- docs/gimp-backend-settings.png, docs/gimp-sketch-to-face-dialog.png  the other two dialogs, the same way
- docs/gimp-before.png / docs/gimp-after.png  a photo, and the image after Sketchify (GIMP's own export)
  -- only when the backend's sketch engine is ready (trained weights present); otherwise it says so.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import chroot  # noqa: E402  (run as a script: its folder is sys.path[0]; facesketch_client comes from the venv)
import harness  # noqa: E402

GUI_SCRIPT = """
from gi.repository import Gimp, Gio
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path({photo!r}))
Gimp.Display.new(image)
Gimp.displays_flush()
procedure = Gimp.get_pdb().lookup_procedure('facesketch-sketchify')
config = procedure.create_config()
config.set_property('run-mode', Gimp.RunMode.INTERACTIVE)
config.set_property('image', image)
config.set_core_object_array('drawables', image.get_selected_drawables())
procedure.run(config)
"""

SETTINGS_GUI_SCRIPT = """
from gi.repository import Gimp
procedure = Gimp.get_pdb().lookup_procedure('facesketch-backend-settings')
config = procedure.create_config()
config.set_property('run-mode', Gimp.RunMode.INTERACTIVE)
procedure.run(config)
"""

FACE_GUI_SCRIPT = GUI_SCRIPT.replace("facesketch-sketchify", "facesketch-sketch-to-face")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", help="photo to use (default: the first FS2K test sample)")
    ap.add_argument("--docs", default=os.path.join(REPO, "docs"))
    args = ap.parse_args()
    from PIL import Image
    from facesketch_client import Client

    photo = args.photo or harness.fs2k_sample("photo")
    root = chroot.ensure_chroot()
    session = harness.GimpSession(root)
    address = f"tcp://127.0.0.1:{free_port()}"
    env = dict(os.environ, FACESKETCH_SETTINGS=os.path.join(session.base, "backend-settings.json"),
               XDG_STATE_HOME=os.path.join(session.base, "state"))
    backend = subprocess.Popen([sys.executable, "-m", "facesketch", "serve", "--bind", address, "--device", "cpu"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert "ready on" in backend.stdout.readline().decode(), "the backend did not start"
        client = Client(address)
        engines = {e["name"]: e for e in client.hello()["engines"]}
        client.close()
        session.install_plugin()
        session.write_settings(address=address, autostart=False, timeout_s=600.0)
        with Image.open(photo) as im:
            im = im.convert("RGB")
            im.save(os.path.join(args.docs, "gimp-before.png.tmp"), "PNG")
        inside_photo = session.put("photo.png", open(os.path.join(args.docs, "gimp-before.png.tmp"), "rb").read())

        t0 = time.monotonic()
        info = session.screenshot_dialog(GUI_SCRIPT.format(photo=inside_photo), "Sketchify photo",
                                         os.path.join(args.docs, "gimp-sketchify-dialog.png"))
        print(f"dialog screenshot {info} in {time.monotonic() - t0:.0f} s")

        info = session.screenshot_dialog(SETTINGS_GUI_SCRIPT, "Face sketch backend",
                                         os.path.join(args.docs, "gimp-backend-settings.png"), display=92)
        print(f"settings dialog screenshot {info}")

        inside_sketch = session.put("sketch.png", open(harness.fs2k_sample("sketch"), "rb").read())
        info = session.screenshot_dialog(FACE_GUI_SCRIPT.format(photo=inside_sketch), "Sketch to face",
                                         os.path.join(args.docs, "gimp-sketch-to-face-dialog.png"), display=93)
        print(f"face dialog screenshot {info}")

        sketch = engines.get("sketch")
        if sketch and sketch.get("ready"):
            after = session.inside + "/out/after.png"
            report = session.run_driver([{"tag": "after", "kind": "photo", "photo": inside_photo,
                                          "proc": "facesketch-sketchify", "args": {}, "save_png": after}], "docs")
            rec = report["scenarios"]["after"]
            assert rec["status"] == "SUCCESS", rec["message"]
            shutil.copy(session.host_path(after), os.path.join(args.docs, "gimp-after.png"))
            os.replace(os.path.join(args.docs, "gimp-before.png.tmp"), os.path.join(args.docs, "gimp-before.png"))
            print("before/after written")
        else:
            os.remove(os.path.join(args.docs, "gimp-before.png.tmp"))
            why = sketch.get("reason") if sketch else "the backend has no sketch engine"
            print(f"no before/after pictures: the sketch engine is not ready ({why})")
    finally:
        backend.terminate()
        backend.wait(10)
        session.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
