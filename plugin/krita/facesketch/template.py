"""The face template drawn under the sketch: where eyes, nose and mouth go.

The boxes are DeepFaceDrawing's component crops (x, y, size on a 512 canvas), the same numbers and
rounding as models/data/face_template.py (the plug-in cannot import models/: no numpy in Krita).
The face model encodes each box separately, so strokes that stay inside their box work best.
"""
from __future__ import annotations

import math

from facesketch_client import Image

from .qt import QImage, QPainter, QColor, QPen, QFont, FORMAT_ARGB32, ANTIALIASING, DASH_LINE, image_bytes

TEMPLATE_CANVAS = 512
BOXES_512 = {
    "left eye": (108, 156, 128),   # DeepFaceDrawing "eye1": the eye on the image-left side
    "right eye": (255, 156, 128),  # "eye2"
    "nose": (182, 232, 160),
    "mouth": (169, 301, 192),
}


def scaled(v: float, canvas: int) -> int:
    return int(math.floor(v * canvas / TEMPLATE_CANVAS + 0.5))


def boxes(canvas: int) -> dict:
    return {k: (scaled(x, canvas), scaled(y, canvas), scaled(s, canvas)) for k, (x, y, s) in BOXES_512.items()}


def draw_template(canvas: int, width: int) -> Image:
    """A transparent BGRA8 image `width` x `canvas` with light guides on the left `canvas` square and,
    when the document is side by side (width > canvas), a divider and a note on the right half."""
    img = QImage(width, canvas, FORMAT_ARGB32)
    img.fill(QColor(0, 0, 0, 0))
    p = QPainter(img)
    p.setRenderHint(ANTIALIASING)
    s = canvas / TEMPLATE_CANVAS
    guide = QColor(120, 160, 220, 150)
    box_pen = QPen(QColor(120, 160, 220, 110))
    box_pen.setStyle(DASH_LINE)
    box_pen.setWidthF(max(1.0, 1.5 * s))
    line_pen = QPen(guide)
    line_pen.setWidthF(max(1.0, 2.0 * s))
    font = QFont()
    font.setPixelSize(max(8, int(18 * s)))
    p.setFont(font)

    # face outline and vertical centre line: where the remainder (hair, jaw, cheeks) lives
    p.setPen(line_pen)
    p.drawEllipse(int(118 * s), int(70 * s), int(276 * s), int(390 * s))
    p.setPen(box_pen)
    p.drawLine(int(256 * s), int(60 * s), int(256 * s), int(470 * s))
    for name, (x, y, size) in boxes(canvas).items():
        p.setPen(box_pen)
        p.drawRect(x, y, size - 1, size - 1)
        p.setPen(QColor(120, 160, 220, 170))
        p.drawText(x + 3, y + font.pixelSize(), name)
        p.setPen(line_pen)
        cx, cy = x + size / 2, y + size / 2
        if "eye" in name:  # an almond at the box centre
            p.drawEllipse(int(cx - 24 * s), int(cy - 9 * s), int(48 * s), int(18 * s))
        elif name == "nose":  # the nose tip sits at the box centre, under the eyes
            p.drawLine(int(cx - 16 * s), int(cy + 10 * s), int(cx + 16 * s), int(cy + 10 * s))
        else:  # mouth line at the box centre
            p.drawLine(int(cx - 36 * s), int(cy), int(cx + 36 * s), int(cy))
    if width > canvas:
        p.setPen(QPen(QColor(160, 160, 160, 200)))
        p.drawLine(canvas, 0, canvas, canvas - 1)
        p.setPen(QColor(150, 150, 150, 200))
        p.drawText(canvas + int(12 * s), int(30 * s), "face appears here")
    p.end()
    return Image(width, canvas, "BGRA8", image_bytes(img))
