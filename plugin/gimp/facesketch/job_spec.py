"""What the GIMP plug-in asks the backend for, and how it words the answers.

Pure Python (no Gimp, no zmq), so it is unit-tested outside GIMP (tests/test_gimp_job_spec.py).
The GIMP adapter (facesketch.py) reads the dialog/PDB arguments, calls these helpers, and only
does pixels and layers itself.
"""
from __future__ import annotations

# Style choice nicks of the Sketchify procedure -> the sketch engine's "style" values.
STYLE_CHOICES = (
    ("style-1", "1", "Style 1", "First drawing style of the training set"),
    ("style-2", "2", "Style 2", "Second drawing style of the training set"),
    ("style-3", "3", "Style 3", "Third drawing style of the training set"),
    ("mix", "mix", "Mix of the three", "Blend the three styles with the weights below"),
)
STYLE_BY_NICK = {nick: value for nick, value, _label, _help in STYLE_CHOICES}

GENDER_CHOICES = (("female", "Female"), ("male", "Male"))

# Face sliders: PDB argument name -> face engine parameter name.
FACE_SLIDERS = (
    ("blend-left-eye", "blend_left_eye", "_Left eye"),
    ("blend-right-eye", "blend_right_eye", "_Right eye"),
    ("blend-nose", "blend_nose", "_Nose"),
    ("blend-mouth", "blend_mouth", "_Mouth"),
    ("blend-remainder", "blend_remainder", "Re_mainder"),
    ("master", "master", "Master _blend"),
)

SETTINGS_MENU = "Filters \u25b8 Artistic \u25b8 Face sketch backend\u2026"


def sketch_params(style_nick: str, mix: tuple[float, float, float]) -> dict:
    """Engine parameters for the sketch engine from the procedure's arguments."""
    style = STYLE_BY_NICK.get(style_nick, style_nick)
    # strength 1 = the pure sketch; blending over the photo is the new layer's opacity, which stays editable
    params = {"style": style, "strength": 1.0}
    if style == "mix":
        weights = [max(0.0, float(w)) for w in mix]
        total = sum(weights)
        if total <= 0:
            raise ValueError("The style mix needs at least one weight above zero.")
        params["style_mix"] = [w / total for w in weights]  # weights as proportions, summing to 1
    return params


def face_params(values: dict, gender: str) -> dict:
    """Engine parameters for the face engine; `values` maps PDB argument names to floats."""
    params = {engine_name: float(values[arg]) for arg, engine_name, _label in FACE_SLIDERS if arg in values}
    params["gender"] = gender
    return params


def parse_extra_params(text: str) -> dict:
    """The advanced 'extra-params' argument: a JSON object of engine parameters (e.g. {"k": 5})."""
    import json
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


def engine_info(caps: dict, engine: str) -> dict | None:
    for info in caps.get("engines", []):
        if info.get("name") == engine:
            return info
    return None


def supported_params(params: dict, info: dict) -> dict:
    """Keep only the parameters the engine declares (the echo engine takes none)."""
    known = {p.get("name") for p in info.get("params", [])}
    return {k: v for k, v in params.items() if k in known}


def choose_outputs(info: dict, extra: str | None) -> list | None:
    """Outputs to request: the engine's defaults (None), plus `extra` (e.g. "depth") when the engine offers it."""
    offered = info.get("outputs") or []
    if not extra or extra not in offered:
        return None
    outputs = list(info.get("default_outputs") or offered[:1])
    if extra not in outputs:
        outputs.append(extra)
    return outputs


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


def not_ready_message(engine: str, reason: str) -> str:
    reason = (reason or "no reason given").strip()
    return f"The backend's '{engine}' engine is not ready: {reason}"


def unknown_engine_message(engine: str, caps: dict) -> str:
    names = ", ".join(e.get("name", "?") for e in caps.get("engines", [])) or "none"
    return f"The backend has no '{engine}' engine (it offers: {names}). Update the backend or the plug-in."


def too_large_message(width: int, height: int, max_pixels: int) -> str:
    return (f"The area to process is {width}x{height} = {width * height / 1e6:.1f} megapixels; the backend "
            f"accepts at most {max_pixels / 1e6:.1f} megapixels. Select a smaller area or scale the image down "
            f"(Image \u25b8 Scale Image\u2026).")


def unreachable_hint(settings) -> str:
    """How to get a backend running, in plain words (added to the client's 'not reachable' sentence)."""
    cmd = " ".join(getattr(settings, "backend_command", None) or [])
    lines = []
    if cmd:
        lines.append(f"The backend install.py set up starts with: {cmd}")
    if not getattr(settings, "autostart", False):
        lines.append(f"To have GIMP start it when needed, turn on \u201cStart a local backend automatically\u201d "
                     f"in {SETTINGS_MENU}")
    elif not cmd:
        lines.append("Auto-start is on, but no local backend is set up here: run python3 install.py "
                     "in the facesketch folder.")
    return "\n".join(lines)


def explain_backend_error(err, settings) -> str:
    """One plain-language message for a BackendError, with what to do about it."""
    code = getattr(err, "code", "")
    text = str(err).strip() or code or err.__class__.__name__
    if code == "unreachable":
        hint = unreachable_hint(settings)
        return f"{text.rstrip('.')}.\n{hint}" if hint else text
    if code == "timeout":
        return (f"{text}\nThe backend may still be busy (a first run loads the model): try again, or raise the "
                f"timeout in {SETTINGS_MENU}")
    if code == "not_ready":
        return text if "not ready" in text.lower() else f"The engine is not ready: {text}"
    if code == "too_large":
        return f"{text}\nSelect a smaller area or scale the image down."
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
