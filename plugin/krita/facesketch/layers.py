"""Reading layers into wire images and writing results into new layers.

Krita's `pixelData` bytes are what travel: integer RGBA is B,G,R,A in memory (sent as "BGRA8"),
16-bit integer RGBA is B,G,R,A of native uint16 (swapped to the protocol's "RGBA16" with array slices,
which run at C speed), 8-bit gray+alpha is "GRAYA8". Float documents get a clear message instead.

Results only ever go into nodes this plug-in created (`setPixelData` is not undoable, so writing into a
user's layer could lose strokes on undo).
"""
from __future__ import annotations

import array
import zlib

from .facesketch_client import Image

from .qt import QImage, QPainter, QColor, FORMAT_ARGB32, image_bytes


class InputError(Exception):
    """The chosen layer or document cannot be sent; the message says what to do instead."""


# Node types whose pixels the user painted (writes to the others are silently ignored by Krita,
# and their pixelData is not what the user sees).
_KIND_NAMES = {
    "grouplayer": "a group layer",
    "filelayer": "a file layer",
    "vectorlayer": "a vector layer",
    "clonelayer": "a clone layer",
    "filterlayer": "a filter layer",
    "filllayer": "a fill layer",
    "transparencymask": "a transparency mask",
    "filtermask": "a filter mask",
    "transformmask": "a transform mask",
    "selectionmask": "a selection mask",
    "colorizemask": "a colorize mask",
}


def check_paint_layer(node, purpose: str) -> None:
    """Raise InputError unless `node` is a paint layer whose pixels can be read as `purpose`."""
    if node is None:
        raise InputError(f"Select a paint layer first: {purpose} works on the active layer.")
    kind = node.type()
    if kind != "paintlayer":
        what = _KIND_NAMES.get(kind, f"a {kind}")
        raise InputError(f"'{node.name()}' is {what}; {purpose} works on paint layers. Select a paint layer, "
                         "or convert this one (Layer ▸ Convert ▸ to Paint Layer) and try again.")


def wire_format(node) -> str:
    """The protocol format for this node's pixelData, or InputError with what to do."""
    model, depth = node.colorModel(), node.colorDepth()
    if model == "RGBA" and depth == "U8":
        return "BGRA8"
    if model == "RGBA" and depth == "U16":
        return "RGBA16"
    if model == "GRAYA" and depth == "U8":
        return "GRAYA8"
    if depth in ("F16", "F32"):
        raise InputError(f"'{node.name()}' uses {depth[1:]}-bit floating-point channels, which Face Sketch does not "
                         "read. Convert the image to 8- or 16-bit integer RGB (Image ▸ Convert Image Color Space), "
                         "or work on an 8-bit copy.")
    raise InputError(f"'{node.name()}' is in the {model} {depth} color space; Face Sketch reads RGB/Alpha "
                     "(8- or 16-bit integer) and 8-bit Gray/Alpha layers. Convert the image "
                     "(Image ▸ Convert Image Color Space) and try again.")


def _swap_red_blue(data: bytes, typecode: str) -> bytes:
    """BGRA <-> RGBA for 4-channel pixels of `typecode` ('B' 8-bit, 'H' 16-bit); C-speed slice copies."""
    src = array.array(typecode, data)
    out = array.array(typecode, src)
    out[0::4] = src[2::4]
    out[2::4] = src[0::4]
    return out.tobytes()


def read_layer(node, x: int, y: int, w: int, h: int) -> Image:
    """The node's own pixels in the rectangle, as a wire Image (a copy; the layer is untouched)."""
    fmt = wire_format(node)
    data = bytes(node.pixelData(x, y, w, h))
    if fmt == "RGBA16":  # both native-endian uint16: only the channel order differs
        data = _swap_red_blue(data, "H")
    return Image(w, h, fmt, data)


def krita_bytes(image: Image, node) -> bytes:
    """Result bytes in the layout `node.setPixelData` expects (node has the document's color space)."""
    model, depth = node.colorModel(), node.colorDepth()
    data = image.tobytes()
    fmt = image.format
    if model == "RGBA" and depth == "U8":
        if fmt == "BGRA8":
            return data
        if fmt == "RGBA8":
            return _swap_red_blue(data, "B")
    if model == "RGBA" and depth == "U16" and fmt == "RGBA16":
        return _swap_red_blue(data, "H")
    if model == "GRAYA" and depth == "U8" and fmt == "GRAYA8":
        return data
    raise InputError(f"The backend returned {fmt} pixels, which cannot be written into a {model} {depth} layer.")


def flatten_on_white(image: Image) -> Image:
    """A BGRA8 image composited over white (what the user sees of a transparent sketch layer)."""
    assert image.format == "BGRA8"
    data = image.tobytes()
    src = QImage(data, image.width, image.height, image.width * 4, FORMAT_ARGB32)
    out = QImage(image.width, image.height, FORMAT_ARGB32)
    out.fill(QColor(255, 255, 255, 255))
    painter = QPainter(out)
    painter.drawImage(0, 0, src)
    painter.end()
    return Image(image.width, image.height, "BGRA8", image_bytes(out))


def checksum(node, x: int, y: int, w: int, h: int) -> int:
    """A cheap fingerprint of a layer region (a copy plus crc32: ~1 ms for 512x512)."""
    return zlib.crc32(node.pixelData(x, y, w, h))


def clamp_to_canvas(doc, node) -> tuple[int, int, int, int] | None:
    """The node's bounds clipped to the canvas (layers may extend past it), or None when empty."""
    b = node.bounds()
    x0, y0 = max(b.x(), 0), max(b.y(), 0)
    x1, y1 = min(b.x() + b.width(), doc.width()), min(b.y() + b.height(), doc.height())
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def region_to_send(doc, node) -> tuple[int, int, int, int] | None:
    """The node's bounds clipped to the canvas and, when something is selected, to the selection's bounding
    box; None when nothing is left."""
    rect = clamp_to_canvas(doc, node)
    selection = doc.selection()
    if rect is None or selection is None or selection.width() <= 0 or selection.height() <= 0:
        return rect
    x0, y0 = max(rect[0], selection.x()), max(rect[1], selection.y())
    x1 = min(rect[0] + rect[2], selection.x() + selection.width())
    y1 = min(rect[1] + rect[3], selection.y() + selection.height())
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def new_layer(doc, name: str, image: Image | None, x: int = 0, y: int = 0, parent=None, above=None,
              opacity: float = 1.0, locked: bool = False, visible: bool = True):
    """A new paint layer holding `image` at (x, y) (or empty), inserted above `above` (or at the top of
    `parent`). Inserting a layer is one undo step ("Add Layer") in Krita; writing into it is none."""
    node = doc.createNode(name, "paintlayer")
    if image is not None:
        node.setPixelData(krita_bytes(image, node), x, y, image.width, image.height)
    if opacity < 1.0:
        node.setOpacity(int(round(opacity * 255)))
    if not visible:
        node.setVisible(False)
    if locked:  # before insertion: a change right after it reaches Krita's layer model before the node does
        node.setLocked(True)
    parent = parent or (above.parentNode() if above is not None else doc.rootNode())
    if not parent.addChildNode(node, above):
        raise InputError(f"Krita refused to add the layer '{name}' (is the parent layer locked?).")
    doc.waitForDone()  # the insertion runs in Krita's stroke queue; small, and later calls need the node in place
    return node


def replace_pixels(doc, node, image: Image, x: int, y: int) -> None:
    """Overwrite one of OUR nodes (preview, guide) in place: clear it, write, refresh.

    Nothing here may reach the undo stack: Ctrl+Z must undo the user's last stroke, not a preview update.
    (krita-ai-diffusion's refresh trick `node.setBlendingMode(node.blendingMode())` pushes a "Composition
    Mode Change" command in Krita 5.1, so it is not used.) setPixelData ignores the layer lock."""
    b = node.bounds()
    if b.width() > 0 and b.height() > 0:  # clear what was there outside the new rectangle
        node.setPixelData(bytes(b.width() * b.height() * _pixel_size(node)), b.x(), b.y(), b.width(), b.height())
    node.setPixelData(krita_bytes(image, node), x, y, image.width, image.height)
    doc.refreshProjection()


def copy_image(node) -> tuple[Image, int, int] | None:
    """A paint layer's pixels inside its bounds, as (BGRA8/RGBA16/GRAYA8 Image, x, y); None when empty."""
    b = node.bounds()
    if b.width() <= 0 or b.height() <= 0:
        return None
    return read_layer(node, b.x(), b.y(), b.width(), b.height()), b.x(), b.y()


def _pixel_size(node) -> int:
    channels = {"RGBA": 4, "GRAYA": 2}.get(node.colorModel(), 4)
    size = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}.get(node.colorDepth(), 1)
    return channels * size


def find_node(doc, unique_id: str):
    """The node with this uniqueId, or None (Krita 5.1 has no lookup by id)."""
    stack = list(doc.topLevelNodes())
    while stack:
        n = stack.pop()
        if n.uniqueId().toString() == unique_id:
            return n
        stack.extend(n.childNodes())
    return None


def node_id(node) -> str:
    return node.uniqueId().toString()
