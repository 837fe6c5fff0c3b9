"""The face template drawn under the sketch: where eyes, nose and mouth go.

The boxes come from the backend: the face engine advertises its canvas and the template boxes its model was
trained on in the hello reply's details (jobs.face_layout); nothing here knows the numbers. The face model
encodes each box separately, so strokes that stay inside their box work best. The face outline and centre
line are only drawing aids, proportional to the canvas.
"""
from __future__ import annotations

from .facesketch_client import Image, jobs

from .qt import QImage, QPainter, QColor, QPen, QFont, FORMAT_ARGB32, ANTIALIASING, DASH_LINE, image_bytes

# Drawing aids as fractions of the canvas: the face outline (x, y, w, h) and the centre line's ends.
OUTLINE = (0.23, 0.137, 0.539, 0.762)
CENTRE_LINE = (0.117, 0.918)


def draw_template(layout: "jobs.FaceLayout", width: int) -> Image:
    """A transparent BGRA8 image `width` x canvas with light guides on the left canvas square and, when the
    document is side by side (width > canvas), a divider and a note on the right half."""
    canvas = layout.canvas
    img = QImage(width, canvas, FORMAT_ARGB32)
    img.fill(QColor(0, 0, 0, 0))
    p = QPainter(img)
    p.setRenderHint(ANTIALIASING)
    s = canvas / 512.0  # pen widths and fonts look the same at every canvas size
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
    ox, oy, ow, oh = (int(v * canvas) for v in OUTLINE)
    p.drawEllipse(ox, oy, ow, oh)
    p.setPen(box_pen)
    p.drawLine(canvas // 2, int(CENTRE_LINE[0] * canvas), canvas // 2, int(CENTRE_LINE[1] * canvas))
    for part, label in jobs.FACE_PARTS:
        x, y, size = layout.boxes[part]
        p.setPen(box_pen)
        p.drawRect(x, y, size - 1, size - 1)
        p.setPen(QColor(120, 160, 220, 170))
        p.drawText(x + 3, y + font.pixelSize(), label)
        p.setPen(line_pen)
        cx, cy = x + size / 2, y + size / 2
        if part.endswith("eye"):  # an almond at the box centre
            p.drawEllipse(int(cx - 24 * s), int(cy - 9 * s), int(48 * s), int(18 * s))
        elif part == "nose":  # the nose tip sits at the box centre, under the eyes
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
