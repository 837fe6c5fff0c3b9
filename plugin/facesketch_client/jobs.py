"""What the host plug-ins ask the backend for, and how they word the answers: the one copy both use.

Pure Python (no Gimp, no Qt, no zmq), so it is unit-tested outside the hosts (tests/test_gimp_job_spec.py).
The plug-ins read their widgets or PDB arguments, call these helpers, and only do pixels and layers
themselves. Facts about the models (canvas size, template boxes, parameter defaults) are not copied here:
the backend's hello reply carries them (see `face_layout`, `param_defaults` and docs/protocol.md).
"""
from __future__ import annotations

import json

# -- capabilities ------------------------------------------------------------------------------------


def engine_info(caps: dict | None, engine: str) -> dict | None:
    """The hello reply's description of `engine`, or None."""
    for info in (caps or {}).get("engines", []):
        if info.get("name") == engine:
            return info
    return None


def param_names(info: dict | None) -> set | None:
    """The parameter names the engine declares (None when the engine is unknown)."""
    return None if info is None else {p.get("name") for p in info.get("params", [])}


def supported_params(params: dict, info: dict | None) -> dict:
    """Keep only the parameters the engine declares (the echo engine takes none); all when unknown."""
    known = param_names(info)
    return dict(params) if known is None else {k: v for k, v in params.items() if k in known}


def param_defaults(info: dict | None) -> dict:
    """Parameter name -> default, as the engine advertises it (details.defaults, else params[].default)."""
    if info is None:
        return {}
    defaults = {p.get("name"): p.get("default") for p in info.get("params", []) if "default" in p}
    defaults.update((info.get("details") or {}).get("defaults") or {})
    return defaults


def choose_outputs(info: dict, extra: str | None) -> list | None:
    """Outputs to request: the engine's defaults (None), plus `extra` (e.g. "depth") when the engine offers it."""
    offered = info.get("outputs") or []
    if not extra or extra not in offered:
        return None
    outputs = list(info.get("default_outputs") or offered[:1])
    if extra not in outputs:
        outputs.append(extra)
    return outputs


def engine_problem(caps: dict | None, engine: str) -> str | None:
    """None when the backend says `engine` is ready (or nothing is known yet); else a sentence saying why not."""
    if caps is None:
        return None
    info = engine_info(caps, engine)
    if info is None:
        return unknown_engine_message(engine, caps)
    if not info.get("ready", False):
        return not_ready_message(engine, info.get("reason", ""))
    return None


class FaceLayout:
    """The face engine's canvas and template boxes, as its hello details advertise them.

    boxes: part -> (x, y, size) on the `canvas` square, parts "left_eye", "right_eye", "nose", "mouth"
    ("left" = on the left of the image)."""

    def __init__(self, canvas: int, boxes: dict):
        self.canvas = canvas
        self.boxes = boxes


FACE_PARTS = (("left_eye", "left eye"), ("right_eye", "right eye"), ("nose", "nose"), ("mouth", "mouth"))


def face_layout(caps: dict | None, engine: str = "face") -> FaceLayout | None:
    """The canvas and boxes the face engine advertises, or None when the backend says nothing usable."""
    details = (engine_info(caps, engine) or {}).get("details") or {}
    canvas, raw = details.get("canvas"), details.get("boxes")
    if isinstance(canvas, bool) or not isinstance(canvas, int) or not 32 <= canvas <= 4096 or not isinstance(raw, dict):
        return None
    boxes = {}
    for part, _label in FACE_PARTS:
        box = raw.get(part)
        if not (isinstance(box, (list, tuple)) and len(box) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) for v in box)):
            return None
        boxes[part] = tuple(box)
    return FaceLayout(canvas, boxes)


# -- parameters ----------------------------------------------------------------------------------------

# Face sliders: engine parameter -> label. The five blends are DeepFaceDrawing's blend weights per part.
FACE_BLENDS = (
    ("blend_left_eye", "Left eye"),
    ("blend_right_eye", "Right eye"),
    ("blend_nose", "Nose"),
    ("blend_mouth", "Mouth"),
    ("blend_remainder", "Rest of face"),
)
FACE_SLIDERS = FACE_BLENDS + (("master", "Master"),)
BLEND_HELP = ("How far each part is pulled towards plausible faces from the model's database: 0 keeps your "
              "strokes as drawn, 1 trusts the database (DeepFaceDrawing's blend weights).")
GENDERS = (("female", "Female"), ("male", "Male"))
# Where the face engine looks for the drawn face (its "align" parameter): value, label.
FACE_ALIGNS = (("auto", "Find the face in the layer"), ("template", "The layer is the face template"))
# What the result layer holds around the face when the engine found it in the layer (its "outside" parameter).
FACE_OUTSIDES = (("transparent", "Transparent"), ("paper", "Paper"))

# The sketch engine's styles: value, label, help.
SKETCH_STYLES = (
    ("1", "Style 1", "First drawing style of the training set"),
    ("2", "Style 2", "Second drawing style of the training set"),
    ("3", "Style 3", "Third drawing style of the training set"),
    ("mix", "Mix of the three", "Blend the three styles with the weights below"),
)
STYLE_VALUES = tuple(v for v, _label, _help in SKETCH_STYLES)


def normalise_mix(mix) -> list:
    """Style-mix weights as proportions summing to 1 (negative weights count as 0)."""
    weights = [max(0.0, float(w)) for w in mix]
    total = sum(weights)
    if total <= 0:
        raise ValueError("The style mix needs at least one weight above zero.")
    return [w / total for w in weights]


def sketch_params(style: str, mix=(1.0, 1.0, 1.0), strength: float = 1.0) -> dict:
    """Engine parameters for the sketch engine. `style` is one of STYLE_VALUES; `mix` only counts for "mix"."""
    if style not in STYLE_VALUES:
        raise ValueError(f"Unknown sketch style {style!r}; choose one of {', '.join(STYLE_VALUES)}.")
    params = {"style": style, "strength": float(strength)}
    if style == "mix":
        params["style_mix"] = normalise_mix(mix)
    return params


def _choice(name: str, value: str, choices) -> str:
    values = tuple(v for v, _label in choices)
    if value not in values:
        raise ValueError(f"Unknown {name} {value!r}; choose one of {', '.join(values)}.")
    return value


def face_params(values: dict, gender: str, align: str = "auto", outside: str = "transparent") -> dict:
    """Engine parameters for the face engine; `values` maps slider parameter names to floats.

    align "auto": the engine finds the drawn face anywhere in the layer and returns it there, `outside` (one of
    FACE_OUTSIDES) around it; "template": the whole layer is the face template (a face canvas), and `outside`
    does not count, so it is not sent. Older backends without these parameters: `supported_params` drops them."""
    params = {name: float(values[name]) for name, _label in FACE_SLIDERS if name in values}
    params["gender"] = gender
    params["align"] = _choice("face alignment", align, FACE_ALIGNS)
    if align == "auto":
        params["outside"] = _choice("surrounding", outside, FACE_OUTSIDES)
    return params


def parse_extra_params(text: str) -> dict:
    """The advanced 'extra-params' text: a JSON object of engine parameters (e.g. {"k": 5})."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"extra-params must be a JSON object like {{\"k\": 5}} ({exc})")
    if not isinstance(value, dict):
        raise ValueError("extra-params must be a JSON object like {\"k\": 5}")
    return value


# -- names -------------------------------------------------------------------------------------------


def style_label(params: dict) -> str:
    style = params.get("style")
    if style == "mix":
        weights = params.get("style_mix") or []
        return "style mix " + "/".join(f"{w:g}" for w in weights)
    if style:
        return f"style {style}"
    return ""


def layer_name(output: str, source_name: str, detail: str = "") -> str:
    """Layer names say what a layer is: 'Sketch (style 2) of Portrait', 'Depth map of Portrait'."""
    what = {"sketch": "Sketch", "depth": "Depth map", "face": "Face", "shadow": "Face shadow",
            "image": "Backend echo"}.get(output, output.replace("_", " ").capitalize())
    if detail and output in ("sketch", "face"):
        what = f"{what} ({detail})"
    return f"{what} of {source_name}"


# -- messages ----------------------------------------------------------------------------------------


def not_ready_message(engine: str, reason: str) -> str:
    reason = (reason or "no reason given").strip()
    return f"The backend's '{engine}' engine is not ready: {reason}"


def unknown_engine_message(engine: str, caps: dict) -> str:
    names = ", ".join(e.get("name", "?") for e in caps.get("engines", [])) or "none"
    return f"The backend has no '{engine}' engine (it offers: {names}). Update the backend or the plug-in."


def too_large_message(width: int, height: int, max_pixels: int) -> str:
    return (f"The area to process is {width}x{height} = {width * height / 1e6:.1f} megapixels; the backend "
            f"accepts at most {max_pixels / 1e6:.1f} megapixels. Select a smaller area or scale the image down.")


def unreachable_hint(settings, host: str, settings_place: str) -> str:
    """How to get a backend running, in plain words (added to the client's 'not reachable' sentence).
    `host` is the program ("GIMP"), `settings_place` where its plug-in's settings are."""
    cmd = " ".join(getattr(settings, "backend_command", None) or [])
    lines = []
    if cmd:
        lines.append(f"The backend install.py set up starts with: {cmd}")
    if not getattr(settings, "autostart", False):
        lines.append(f"To have {host} start it when needed, turn on \u201cStart a local backend automatically\u201d "
                     f"in {settings_place}")
    elif not cmd:
        lines.append("Auto-start is on, but no local backend is set up here: run python3 install.py "
                     "in the facesketch folder.")
    return "\n".join(lines)


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


# How to place a face by hand instead, per host (the end of the no_face message).
NO_FACE_ALTERNATIVES = {
    "GIMP": ("Or place the face yourself: set Align to \u201cThe layer is the face template\u201d in Sketch to "
             "face\u2026 and draw the face filling the layer (the eyes at about 43 % of its height, the mouth at "
             "about 77 %, the chin near the bottom)."),
    "Krita": ("Or place the face yourself: click \u201cNew face canvas\u201d in the Face Sketch docker and draw "
              "on its template."),
}


def no_face_message(host: str) -> str:
    """What to do when the face engine found no face in the layer (error code no_face), in `host`'s words."""
    alternative = NO_FACE_ALTERNATIVES.get(host, "Or place the face yourself on the face template "
                                                 "(the face engine's align option \u201ctemplate\u201d).")
    return ("No face was found in this layer. Draw the face as a line drawing: two eyes, a nose and a mouth "
            "inside a head outline, in dark lines on a light or transparent background, the face at least "
            "about a tenth of the layer's width. " + alternative)


def result_notes(result) -> list:
    """The backend's remarks that came with a result (facesketch_client.client.Result.notes; none for older
    clients and backends)."""
    notes = getattr(result, "notes", None) or []
    return [str(n) for n in notes]


def notes_text(notes) -> str:
    """The backend's remarks about a run as one line of sentences ('' when there are none), e.g. 'Found 2 faces
    in the layer and drew the largest: the face at x 560, y 80, 325 x 400 pixels.'"""
    sentences = []
    for note in notes or ():
        text = " ".join(str(note).split()).rstrip(".")
        if text:
            sentences.append(capitalised(text) + ".")
    return " ".join(sentences)


def explain_backend_error(err, settings, host: str, settings_place: str) -> str:
    """One plain-language message for a BackendError, with what to do about it."""
    code = getattr(err, "code", "")
    text = capitalised(str(err).strip() or code or err.__class__.__name__)
    if code == "unreachable":
        hint = unreachable_hint(settings, host, settings_place)
        return f"{text.rstrip('.')}.\n{hint}" if hint else text
    if code == "timeout":
        return (f"{text}\nThe backend may still be busy (a first run loads the model): try again, or raise the "
                f"timeout in {settings_place}")
    if code == "not_ready":
        return text if "not ready" in text.lower() else f"The engine is not ready: {text}"
    if code == "too_large":
        return f"{text}\nSelect a smaller area or scale the image down."
    if code == "no_face":
        return no_face_message(host)
    if code == "version_mismatch":
        return f"{text}\nInstall the plug-in and the backend from the same facesketch version (python3 install.py)."
    return text


def describe_hello(caps: dict, address: str) -> str:
    """The 'Test connection' answer in plain words."""
    lines = [f"Connected to the facesketch backend at {address}.",
             f"Version {caps.get('version', '?')}, protocol {caps.get('protocol', '?')}, "
             f"running on {caps.get('device', '?')}."]
    max_pixels = caps.get("max_pixels")
    if isinstance(max_pixels, (int, float)) and max_pixels > 0:
        lines.append(f"Largest accepted image: {max_pixels / 1e6:.1f} megapixels.")
    for info in caps.get("engines", []):
        name = info.get("name", "?")
        if info.get("ready"):
            lines.append(f"\u2022 {name}: ready")
        else:
            lines.append(f"\u2022 {name}: not ready \u2014 {info.get('reason') or 'no reason given'}")
    return "\n".join(lines)
