"""The facesketch wire protocol: the one definition both the hosts and the backend import.

Transport: ZeroMQ, ROUTER in the backend, DEALER in clients. Every message is multipart:

    frame 0      msgpack header (a map; see docs/protocol.md)
    frames 1..n  raw pixel bytes, one frame per image described in the header, in order

Pixels are never base64'd or embedded in msgpack: large layers travel as their own frames, so
neither side copies or re-encodes them. Pure Python (msgpack only), so it runs inside GIMP and Krita.
"""
from __future__ import annotations

import reprlib

import msgpack

PROTOCOL_VERSION = 1
DEFAULT_PORT = 5557
DEFAULT_ADDRESS = f"tcp://127.0.0.1:{DEFAULT_PORT}"
MAX_HEADER_BYTES = 1 << 20


def max_message_bytes(max_pixels: int) -> int:
    """The backend's hard ceiling per frame (ZeroMQ's MAXMSGSIZE) for a --max-pixels: 8 bytes a pixel (RGBA16)
    plus 1 MiB. A peer that sends a bigger frame is disconnected by ZeroMQ itself, before the service sees
    it, so clients compare an image's bytes with this to tell "too large" from "the backend went away"."""
    return int(max_pixels) * 8 + (1 << 20)

# Pixel formats: name -> (bytes per pixel, channels, bytes per channel).
# RGBA16 is native-endian uint16 (what GIMP's "R'G'B'A u16" and Krita's U16 give on every
# platform they run on: little-endian x86-64 and arm64).
PIXEL_FORMATS = {
    "RGBA8": (4, 4, 1),
    "BGRA8": (4, 4, 1),   # Krita's 8-bit pixelData byte order
    "RGB8": (3, 3, 1),
    "GRAY8": (1, 1, 1),
    "GRAYA8": (2, 2, 1),
    "RGBA16": (8, 4, 2),
}


def bytes_per_pixel(fmt: str) -> int:
    return PIXEL_FORMATS[fmt][0]


# Request ops (client -> backend)
OP_HELLO = "hello"      # capabilities: version, device, engines and their parameters
OP_RUN = "run"          # run an engine on images
OP_CANCEL = "cancel"    # cancel a queued or running request by its id
OP_SHUTDOWN = "shutdown"  # stop the backend (only from this computer or an allow-listed CURVE key)
OPS = (OP_HELLO, OP_RUN, OP_CANCEL, OP_SHUTDOWN)

# Reply kinds (backend -> client)
KIND_HELLO = "hello"
KIND_ACCEPTED = "accepted"   # the run request passed validation and is queued
KIND_PROGRESS = "progress"
KIND_RESULT = "result"
KIND_ERROR = "error"
KIND_CANCEL = "cancel"       # acknowledgement of a cancel request
KIND_SHUTDOWN = "shutdown"   # acknowledgement of a shutdown request: the backend stops right after it


class ErrorCode:
    """Every failure is an error reply carrying one of these codes and a plain-language message."""

    UNKNOWN_OP = "unknown_op"
    BAD_HEADER = "bad_header"
    BAD_FRAMES = "bad_frames"          # missing or extra pixel frames
    SIZE_MISMATCH = "size_mismatch"    # frame length does not match width/height/stride/format
    TOO_LARGE = "too_large"            # above the service's pixel limit
    EMPTY_IMAGE = "empty_image"
    UNKNOWN_ENGINE = "unknown_engine"
    UNKNOWN_PARAM = "unknown_param"
    BAD_PARAM = "bad_param"
    NOT_READY = "not_ready"            # engine has no trained weights (the message says why)
    NO_FACE = "no_face"                # the face engine found no drawn face in the layer (the message says what to draw)
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"          # a newer request with the same supersede key replaced it
    BUSY = "busy"                      # the queue is full; try again shortly
    INTERNAL = "internal"
    FORBIDDEN = "forbidden"            # shutdown from a peer that is neither on this computer nor allow-listed
    WORKER_LOST = "worker_lost"        # scale-out: the Ray worker running the job died; it restarts, try again
    VERSION_MISMATCH = "version_mismatch"
    # Raised by clients only, never sent by the backend:
    BAD_SETTINGS = "bad_settings"      # the address or a key in the settings cannot be used (the message says why)
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    DISCONNECTED = "disconnected"


class ProtocolError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 3, 60, 60, 4, 4


def short_repr(value) -> str:
    """repr() for quoting a peer's value in a message: bounded in length and depth, whatever was sent."""
    return _SHORT.repr(value)


MAX_NAME_CHARS = 128  # image names, supersede keys


def pack_header(header: dict) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


def unpack_header(frame) -> dict:
    """Decode frame 0; anything but a msgpack map is a bad header."""
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError(ErrorCode.BAD_HEADER, f"the header is {len(frame)} bytes; at most {MAX_HEADER_BYTES} "
                                                  "are allowed (pixels belong in their own frames)")
    try:
        header = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types; all mean the same to the peer
        raise ProtocolError(ErrorCode.BAD_HEADER, f"the header is not valid msgpack ({exc.__class__.__name__})")
    if not isinstance(header, dict):
        raise ProtocolError(ErrorCode.BAD_HEADER, "the header must be a msgpack map")
    return header


def image_spec(name: str, width: int, height: int, fmt: str, stride: int | None = None) -> dict:
    """Header entry describing one pixel frame."""
    return {"name": name, "width": width, "height": height, "format": fmt,
            "stride": stride if stride is not None else width * bytes_per_pixel(fmt)}


def check_image_spec(spec, frame_len: int, max_pixels: int) -> dict:
    """Validate one image description against its frame; returns the normalised spec.

    Shared by the backend (for requests) and the clients (for replies), so both enforce the same
    rules and produce the same messages.
    """
    if not isinstance(spec, dict):
        raise ProtocolError(ErrorCode.BAD_HEADER, "each image description must be a map")
    name = spec.get("name", "image")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise ProtocolError(ErrorCode.BAD_HEADER,
                            f"an image's 'name' must be a string of 1 to {MAX_NAME_CHARS} characters, "
                            f"not {short_repr(name)}")
    fmt = spec.get("format")
    if not isinstance(fmt, str) or fmt not in PIXEL_FORMATS:
        raise ProtocolError(ErrorCode.BAD_HEADER, f"image '{name}': unknown pixel format {short_repr(fmt)}; "
                                                  f"use one of {', '.join(PIXEL_FORMATS)}")
    w, h = spec.get("width"), spec.get("height")
    for key, value in (("width", w), ("height", h)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ProtocolError(ErrorCode.BAD_HEADER, f"image '{name}': {key} must be a whole number >= 0")
    if w == 0 or h == 0:
        raise ProtocolError(ErrorCode.EMPTY_IMAGE, f"image '{name}' is empty ({w}x{h}): nothing to process")
    if w * h > max_pixels:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"image '{name}' is {w}x{h} = {w * h / 1e6:.1f} megapixels, above this backend's "
                            f"limit of {max_pixels / 1e6:.1f} megapixels; scale it down or raise --max-pixels")
    bpp = bytes_per_pixel(fmt)
    stride = spec.get("stride", w * bpp)
    if isinstance(stride, bool) or not isinstance(stride, int):
        raise ProtocolError(ErrorCode.BAD_HEADER, f"image '{name}': stride must be a whole number of bytes, "
                                                  f"not {short_repr(stride)}")
    if stride < w * bpp:
        raise ProtocolError(ErrorCode.SIZE_MISMATCH,
                            f"image '{name}': row stride {short_repr(stride)} is shorter than a row ({w} x {bpp} bytes)")
    # The last row need not be padded to the full stride.
    expected = stride * (h - 1) + w * bpp
    if frame_len != expected and frame_len != stride * h:
        raise ProtocolError(ErrorCode.SIZE_MISMATCH,
                            f"image '{name}': {w}x{h} {fmt} with stride {stride} needs {stride * h} bytes, "
                            f"the frame has {frame_len}")
    return {"name": name, "width": w, "height": h, "format": fmt, "stride": stride}


def is_loopback(address: str) -> bool:
    """True for addresses only this computer can reach (the backend needs no encryption there)."""
    if address.startswith(("ipc://", "inproc://")):
        return True
    if not address.startswith("tcp://"):
        return False
    host = address[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def is_loopback_host(host: str) -> bool:
    """True for a peer's IP address that only this computer has (127.0.0.0/8, ::1, IPv4-mapped 127.x)."""
    host = host.strip("[]").lower()
    if host.startswith("::ffff:"):
        host = host[len("::ffff:"):]
    return host == "::1" or host.startswith("127.")


def request_id_ok(value) -> bool:
    """Request ids are chosen by the client: a short string or a non-negative integer."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and 0 < len(value) <= 128
