"""scikit-image's bundled test pictures (public domain or CC0, see skimage/data/README.txt in the wheel),
fetched once with `pip download --no-deps` and cached in ~/.cache/facesketch/skimage-data. Evaluation, figures
and the face locator's non-face training pictures; never needed at run time.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

from ..paths import cache_dir

SKIMAGE = "scikit-image==0.26.0"
# with faces in them: figures and the sketch evaluation
PORTRAITS = ("camera.png", "astronaut.png")
# held out from the locator's training: its false-alarm test (a cat, a cup of coffee)
HELD_OUT_SCENES = ("chelsea.png", "coffee.png")
# no faces: the locator's non-face training pictures
TRAINING_SCENES = ("brick.png", "cell.png", "chessboard_RGB.png", "clock_motion.png", "coins.png", "color.png",
                   "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png", "logo.png",
                   "microaneurysms.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png",
                   "phantom.png", "retina.jpg", "rocket.jpg", "text.png")
ALL = PORTRAITS + HELD_OUT_SCENES + TRAINING_SCENES


def pictures(names=PORTRAITS + HELD_OUT_SCENES) -> dict[str, np.ndarray]:
    """name -> RGB uint8 array, fetching the wheel once if any is missing from the cache."""
    folder = cache_dir("skimage-data")
    if not all(os.path.isfile(os.path.join(folder, n)) for n in names):
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", SKIMAGE, "-d", tmp], check=True)
            with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as z:
                for n in ALL:
                    with open(os.path.join(folder, n), "wb") as f:
                        f.write(z.read("skimage/data/" + n))
    out = {}
    for n in names:
        with Image.open(os.path.join(folder, n)) as im:
            out[n] = np.asarray(im.convert("RGB"))
    return out
