#!/usr/bin/env python3
"""facesketch for GIMP 3: photo -> pencil sketch and sketch -> face, computed by the facesketch backend.

Procedures (GIMP 3.0 API, Filters > Artistic):
  facesketch-sketchify         "Sketchify photo..."    active layer (or the selection in it) -> new sketch layer
  facesketch-sketch-to-face    "Sketch to face..."     a face drawn anywhere in the layer (or selection) -> new face layer
  facesketch-backend-settings  "Face sketch backend..." address, keys, timeout, auto-start, test connection

This file is only the GIMP side: arguments, dialogs, reading/writing pixels, layers, undo, progress.
Talking to the backend is facesketch_client's job, what to ask for and how to word answers is
facesketch_client.jobs' (both shared with the Krita plug-in). install.py puts facesketch_client next to
this file; GIMP runs the file as a script, so its folder is sys.path[0] and nothing is added to sys.path
here except by the one explicit vendored-wheel loader call below.
"""
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gimp, Gegl, GLib, GObject  # noqa: E402

from facesketch_client import jobs, vendored  # noqa: E402  (pure Python: no zmq yet)

# The one start-up step: this Python's pyzmq/msgpack wheels (install.py vendored them into _vendor/<tag>/)
# go on sys.path. When that fails the procedures still register and each one says what to do.
try:
    vendored.load(os.path.dirname(os.path.abspath(__file__)))
    _LOAD_ERROR = None
except ImportError as _exc:
    _LOAD_ERROR = str(_exc)

HOST = "GIMP"
SETTINGS_MENU = "Filters \u25b8 Artistic \u25b8 Face sketch backend\u2026"
# Style choice nicks of the Sketchify procedure <-> the sketch engine's "style" values.
STYLE_NICKS = {value: ("mix" if value == "mix" else f"style-{value}") for value in jobs.STYLE_VALUES}
STYLE_BY_NICK = {nick: value for value, nick in STYLE_NICKS.items()}
# PDB arguments of the face sliders: the engine's parameter names with dashes.
FACE_ARGS = tuple((name.replace("_", "-"), name, label) for name, label in jobs.FACE_SLIDERS)

PROC_SKETCHIFY = "facesketch-sketchify"
PROC_FACE = "facesketch-sketch-to-face"
PROC_SETTINGS = "facesketch-backend-settings"
MENU = "<Image>/Filters/Artistic"
# babl converts from any precision, linear or perceptual, gray or indexed to 8-bit sRGB RGBA and back.
PIXEL_FORMAT = "R'G'B'A u8"
RW = GObject.ParamFlags.READWRITE


def _add_advanced_arguments(procedure, default_engine):
    """The two advanced arguments both filters share (scripts and the host test use them)."""
    procedure.add_string_argument("engine", "Engine", "Backend engine (advanced: 'echo' tests the transport)",
                                  default_engine, RW)
    procedure.add_string_argument("extra-params", "Extra parameters",
                                  "Advanced: more engine parameters as a JSON object, e.g. {\"k\": 5}", "", RW)


class PluginError(Exception):
    """A failure to report to the user in plain words (status EXECUTION_ERROR, nothing added)."""


# ---------------------------------------------------------------------------------------------
# Loading the client (pyzmq may be missing from GIMP's Python: say so in plain words)

def _client_modules():
    if _LOAD_ERROR:  # vendored.load's sentence about missing pyzmq/msgpack
        raise PluginError(_LOAD_ERROR)
    try:
        import facesketch_client
        from facesketch_client import client as _client  # noqa: F401  (the classes, with zmq)
        from facesketch_client import settings as fs_settings
        return facesketch_client, fs_settings
    except ImportError as exc:
        raise PluginError(f"The facesketch plug-in cannot load its client library ({exc}). Re-install it with "
                          f"'python3 install.py' from the facesketch folder, then restart GIMP.")


def _explain(err, settings):
    return jobs.explain_backend_error(err, settings, HOST, SETTINGS_MENU)


# ---------------------------------------------------------------------------------------------
# Small GIMP helpers

def _error(procedure, message, status=Gimp.PDBStatusType.EXECUTION_ERROR):
    print(f"facesketch: {message}", file=sys.stderr, flush=True)
    return procedure.new_return_values(status, GLib.Error(message))


def _single_layer(drawables):
    if len(drawables) != 1:
        raise PluginError(f"Select exactly one layer (now {len(drawables)} are selected).")
    drawable = drawables[0]
    if isinstance(drawable, Gimp.LayerMask):
        drawable = drawable.get_layer() if hasattr(drawable, "get_layer") else drawable
    if not isinstance(drawable, Gimp.Layer):
        raise PluginError("Select a layer: channels and masks can't be processed.")
    return drawable


def _read_region(layer):
    """The part of the layer to process (selection bounds within it) as 8-bit RGBA bytes.

    Returns (x, y, w, h, data) with x, y relative to the layer.
    """
    intersects, x, y, w, h = layer.mask_intersect()
    if not intersects or w <= 0 or h <= 0:
        raise PluginError("The selection does not touch this layer: nothing to process.")
    data = layer.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, PIXEL_FORMAT, Gegl.AbyssPolicy.CLAMP)
    return x, y, w, h, bytes(data)


def _layer_type_for(image):
    # A new layer must match the image's base type to be insertable; babl converts our RGBA into it.
    base = image.get_base_type()
    if base == Gimp.ImageBaseType.GRAY:
        return Gimp.ImageType.GRAYA_IMAGE
    if base == Gimp.ImageBaseType.INDEXED:
        return Gimp.ImageType.INDEXEDA_IMAGE
    return Gimp.ImageType.RGBA_IMAGE


def _rgba_rows(result):
    """Tightly packed RGBA8 bytes of a result Image (drops row padding)."""
    if result.format != "RGBA8":
        raise PluginError(f"The backend answered in {result.format} instead of RGBA8; update the backend.")
    data = bytes(result.data)
    row = result.width * 4
    if result.stride == row:
        return data[: row * result.height]
    return b"".join(data[y * result.stride: y * result.stride + row] for y in range(result.height))


class _Progress:
    """Backend progress -> GIMP's progress bar. Never shows 100 % before the layer is written."""

    def __init__(self, text):
        Gimp.progress_init(text)

    def __call__(self, fraction, message=None):
        try:
            Gimp.progress_update(max(0.0, min(0.95, float(fraction or 0.0))))
            if message:
                Gimp.progress_set_text(str(message))
        except Exception:
            pass

    def done(self):
        try:
            Gimp.progress_update(1.0)
            Gimp.progress_end()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# Running a backend job and turning its outputs into layers

def _connect(fs, settings):
    """A Client for the settings, starting a local backend first when auto-start is on."""
    from facesketch_client import launcher
    if settings.autostart:
        try:
            launcher.ensure_backend(settings, wait_s=60)
        except fs.BackendError as err:
            raise PluginError(_explain(err, settings))
        except Exception as err:  # a broken backend_command must not end in a traceback
            raise PluginError(f"Could not start the local backend ({err}).\n{jobs.unreachable_hint(settings, HOST, SETTINGS_MENU)}")
    return fs.Client.from_settings(settings)


def _run_engine(engine, params, extra_output, width, height, data, progress):
    """Send one RGBA8 image to `engine`; returns {output name: Image}. Raises PluginError."""
    fs, fs_settings = _client_modules()
    settings = fs_settings.load()
    client = _connect(fs, settings)
    try:
        caps = client.hello()
        info = jobs.engine_info(caps, engine)
        if info is None:
            raise PluginError(jobs.unknown_engine_message(engine, caps))
        if not info.get("ready", False):
            raise PluginError(jobs.not_ready_message(engine, info.get("reason", "")))
        max_pixels = caps.get("max_pixels")
        if isinstance(max_pixels, int) and max_pixels > 0 and width * height > max_pixels:
            raise PluginError(jobs.too_large_message(width, height, max_pixels))
        image = fs.Image(width, height, "RGBA8", data)
        outputs = jobs.choose_outputs(info, extra_output)
        return client.run(engine, {"image": image}, params=jobs.supported_params(params, info),
                          outputs=outputs, on_progress=progress, reply_format="RGBA8")
    except fs.BackendError as err:
        raise PluginError(_explain(err, settings))
    finally:
        try:
            client.close()
        except Exception:
            pass


def _insert_results(image, layer, region, results, order, name_detail, opacity):
    """New layers above `layer`, masked to the selection, in one undo group. Returns the layers."""
    if not (image.is_valid() and layer.is_valid()):
        raise PluginError("The image or layer was closed while the backend worked: nothing was added.")
    x, y, w, h = region
    _ok, off_x, off_y = layer.get_offsets()
    has_selection = not Gimp.Selection.is_empty(image)
    parent = layer.get_parent()
    added = []
    Gimp.context_push()
    image.undo_group_start()
    try:
        # each insert goes directly above the source, below the ones before: the main result ends up on top
        for output in order:
            result = results[output]
            name = jobs.layer_name(output, layer.get_name(), name_detail)
            new = Gimp.Layer.new(image, name, result.width, result.height, _layer_type_for(image),
                                 opacity, Gimp.LayerMode.NORMAL)
            image.insert_layer(new, parent, image.get_item_position(layer))
            added.append(new)
            new.set_offsets(off_x + x, off_y + y)
            buffer = new.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, result.width, result.height), PIXEL_FORMAT, _rgba_rows(result))
            buffer.flush()
            new.update(0, 0, result.width, result.height)
            if (result.width, result.height) != (w, h):  # an engine with a fixed output size
                new.scale(w, h, True)
                new.set_offsets(off_x + x, off_y + y)
            if has_selection:
                new.add_mask(new.create_mask(Gimp.AddMaskType.SELECTION))
    except Exception:
        for new in added:
            try:
                image.remove_layer(new)
            except Exception:
                pass
        raise
    finally:
        image.undo_group_end()
        Gimp.context_pop()
    Gimp.displays_flush()
    return added


def _ordered_outputs(results, preferred):
    order = [name for name in preferred if name in results]
    order += [name for name in results if name not in order]
    if not order:
        raise PluginError("The backend answered without an image.")
    return order


def _report_notes(results, progress):
    """The backend's remarks about the run (e.g. where it found the face), as GIMP reports other information:
    the progress text and a message (the Error Console, a message box, or the console in batch mode)."""
    text = jobs.notes_text(jobs.result_notes(results))
    if not text:
        return
    progress(0.95, text)
    try:
        Gimp.message(text)
    except Exception:
        pass


def _image_job(procedure, image, drawables, engine, params, extra_output, preferred, detail, opacity, text):
    layer = _single_layer(drawables)
    x, y, w, h, data = _read_region(layer)
    progress = _Progress(text)
    try:
        results = _run_engine(engine, params, extra_output, w, h, data, progress)
        order = _ordered_outputs(results, preferred)
        _insert_results(image, layer, (x, y, w, h), results, order, detail, opacity)
        _report_notes(results, progress)
    finally:
        progress.done()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


# ---------------------------------------------------------------------------------------------
# Procedures

def backend_status_line(engine):
    """One line for the top of a dialog: is the backend there, and is `engine` ready?"""
    try:
        fs, fs_settings = _client_modules()
    except PluginError as err:
        return str(err)
    settings = fs_settings.load()
    try:
        client = fs.Client.from_settings(settings)
    except Exception as err:
        return f"Backend settings problem: {err}"
    try:
        caps = client.hello()
    except fs.BackendError as err:
        if err.code == "unreachable" and settings.autostart and settings.backend_command:
            return "The local backend is not running; it will be started when you press OK (this can take a while)."
        return _explain(err, settings)
    finally:
        client.close()
    info = jobs.engine_info(caps, engine)
    if info is None:
        return jobs.unknown_engine_message(engine, caps)
    if not info.get("ready"):
        return jobs.not_ready_message(engine, info.get("reason", ""))
    return f"Backend {caps.get('version', '?')} on {caps.get('device', '?')} at {settings.address}: ready."


def _run_dialog(procedure, config, title, plug_in_name, engine, layout):
    """A GimpUi.ProcedureDialog with a backend status line on top; `layout(dialog)` fills it."""
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GimpUi, Gtk
    GimpUi.init(plug_in_name)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    status = Gtk.Label(label=backend_status_line(engine))
    status.set_line_wrap(True)
    status.set_max_width_chars(60)
    status.set_xalign(0.0)
    dialog.get_content_area().pack_start(status, False, False, 6)
    status.show()
    layout(dialog)
    ok = dialog.run()
    dialog.destroy()
    return ok


def _sketchify_layout(dialog):
    for prop in ("mix-1", "mix-2", "mix-3"):
        dialog.get_spin_scale(prop, 1.0)
    dialog.get_spin_scale("opacity", 1.0)
    dialog.get_label("mix-title", "Style mix weights", False, False)
    dialog.fill_box("mix-box", ["mix-1", "mix-2", "mix-3"])
    dialog.fill_frame("mix-frame", "mix-title", False, "mix-box")
    try:  # the weights only matter for the mix
        values = Gimp.ValueArray.new(1)
        values.append(GObject.Value(GObject.TYPE_STRING, "mix"))
        dialog.set_sensitive_if_in("mix-frame", None, "style", values, True)
    except Exception:
        pass
    dialog.fill(["style", "mix-frame", "opacity", "add-depth"])


def _face_layout(dialog):
    sliders = [arg for arg, _engine_name, _label in FACE_ARGS]
    for prop in sliders + ["opacity"]:
        dialog.get_spin_scale(prop, 1.0)
    try:  # what surrounds the face only matters when the face is found in the layer
        values = Gimp.ValueArray.new(1)
        values.append(GObject.Value(GObject.TYPE_STRING, "auto"))
        dialog.set_sensitive_if_in("outside", None, "align", values, True)
    except Exception:
        pass
    dialog.fill(["align", "outside"] + sliders + ["gender", "add-shadow", "opacity"])


def run_sketchify(procedure, run_mode, image, drawables, config, _data):
    if run_mode == Gimp.RunMode.INTERACTIVE:
        if not _run_dialog(procedure, config, "Sketchify photo", PROC_SKETCHIFY,
                           config.get_property("engine") or "sketch", _sketchify_layout):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        style = config.get_property("style")
        # strength 1 = the pure sketch; blending over the photo is the new layer's opacity, which stays editable
        params = jobs.sketch_params(STYLE_BY_NICK.get(style, style),
                                    (config.get_property("mix-1"), config.get_property("mix-2"),
                                     config.get_property("mix-3")))
        params.update(jobs.parse_extra_params(config.get_property("extra-params")))
        return _image_job(procedure, image, drawables, config.get_property("engine") or "sketch", params,
                          "depth" if config.get_property("add-depth") else None, ["sketch", "image", "depth"],
                          jobs.style_label(params), config.get_property("opacity"), "Sketchifying")
    except (PluginError, ValueError) as err:
        return _error(procedure, str(err))
    except Exception as err:  # a bug: still a sentence first, details on stderr
        import traceback
        traceback.print_exc()
        return _error(procedure, f"Sketchify failed unexpectedly: {err.__class__.__name__}: {err}")


def run_sketch_to_face(procedure, run_mode, image, drawables, config, _data):
    if run_mode == Gimp.RunMode.INTERACTIVE:
        if not _run_dialog(procedure, config, "Sketch to face", PROC_FACE, config.get_property("engine") or "face",
                           _face_layout):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        values = {name: config.get_property(arg) for arg, name, _label in FACE_ARGS}
        params = jobs.face_params(values, config.get_property("gender"), config.get_property("align"),
                                  config.get_property("outside"))
        params.update(jobs.parse_extra_params(config.get_property("extra-params")))
        return _image_job(procedure, image, drawables, config.get_property("engine") or "face", params,
                          "shadow" if config.get_property("add-shadow") else None, ["face", "image", "shadow"],
                          config.get_property("gender"),
                          config.get_property("opacity"), "Drawing a face")
    except (PluginError, ValueError) as err:
        return _error(procedure, str(err))
    except Exception as err:
        import traceback
        traceback.print_exc()
        return _error(procedure, f"Sketch to face failed unexpectedly: {err.__class__.__name__}: {err}")


# -- backend settings -------------------------------------------------------------------------

SETTINGS_FIELDS = ["address", "timeout", "autostart", "server-public-key", "client-public-key",
                   "client-secret-key"]


def _settings_from_config(fs_settings, config, base):
    """Settings = file values overridden by the non-empty/non-default arguments."""
    import dataclasses
    changes = {}
    address = (config.get_property("address") or "").strip()
    if address:
        changes["address"] = address
    timeout = config.get_property("timeout")
    if timeout and timeout > 0:
        changes["timeout_s"] = float(timeout)
    autostart = config.get_property("autostart")
    if autostart in ("on", "off"):
        changes["autostart"] = autostart == "on"
    for arg, field in (("server-public-key", "server_public_key"), ("client-public-key", "client_public_key"),
                       ("client-secret-key", "client_secret_key")):
        value = (config.get_property(arg) or "").strip()
        if value == "-":      # "-" clears a key (empty means keep)
            changes[field] = ""
        elif value:
            changes[field] = value
    return dataclasses.replace(base, **changes)


def test_connection(fs, settings):
    """(connected, answer in plain words)."""
    try:
        client = fs.Client.from_settings(settings)
    except fs.BackendError as err:
        return False, _explain(err, settings)
    try:
        caps = client.hello()
        return True, jobs.describe_hello(caps, settings.address)
    except fs.BackendError as err:
        return False, _explain(err, settings)
    finally:
        try:
            client.close()
        except Exception:
            pass


def _settings_dialog(procedure, config, fs, fs_settings):
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GimpUi, Gtk
    GimpUi.init(PROC_SETTINGS)
    current = fs_settings.load()
    config.set_property("address", current.address)
    config.set_property("timeout", float(current.timeout_s))
    config.set_property("autostart", "on" if current.autostart else "off")
    config.set_property("server-public-key", current.server_public_key or "")
    config.set_property("client-public-key", current.client_public_key or "")
    config.set_property("client-secret-key", current.client_secret_key or "")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Face sketch backend")
    dialog.fill(SETTINGS_FIELDS)
    answer = Gtk.Label(label=f"Settings file: {fs_settings.path()}")
    answer.set_line_wrap(True)
    answer.set_selectable(True)
    answer.set_xalign(0.0)
    button = Gtk.Button(label="Test connection")

    def on_test(_button):
        answer.set_text("Testing\u2026")
        while Gtk.events_pending():
            Gtk.main_iteration()
        _ok, text = test_connection(fs, _settings_from_config(fs_settings, config, current))
        answer.set_text(text)

    button.connect("clicked", on_test)
    box = dialog.get_content_area()
    box.pack_start(button, False, False, 6)
    box.pack_start(answer, False, False, 6)
    button.show()
    answer.show()
    # show the current state right away; the button re-tests after edits
    GLib.idle_add(lambda: on_test(button) and False)
    ok = dialog.run()
    dialog.destroy()
    return ok, current


def _save_settings(fs_settings, settings):
    """Save, or say in words why not (an address that is not a backend address: nothing is saved)."""
    try:
        fs_settings.save(settings)
    except fs_settings.SettingsError as err:
        raise PluginError(str(err))


def run_settings(procedure, config, _data):
    run_mode = config.get_property("run-mode")
    try:
        fs, fs_settings = _client_modules()
        if run_mode == Gimp.RunMode.INTERACTIVE:
            ok, current = _settings_dialog(procedure, config, fs, fs_settings)
            if not ok:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
            _save_settings(fs_settings, _settings_from_config(fs_settings, config, current))
            return _settings_return(procedure, True, f"Saved to {fs_settings.path()}")
        settings = _settings_from_config(fs_settings, config, fs_settings.load())
        if config.get_property("save"):
            _save_settings(fs_settings, settings)
        connected, answer = (False, "not tested")
        if config.get_property("test"):
            connected, answer = test_connection(fs, settings)
        return _settings_return(procedure, connected, answer)
    except PluginError as err:
        return _error(procedure, str(err))
    except Exception as err:
        import traceback
        traceback.print_exc()
        return _error(procedure, f"Backend settings failed unexpectedly: {err.__class__.__name__}: {err}")


def _settings_return(procedure, connected, answer):
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
    values.remove(1)
    values.insert(1, GObject.Value(GObject.TYPE_BOOLEAN, bool(connected)))
    values.insert(2, GObject.Value(GObject.TYPE_STRING, answer))
    return values


# ---------------------------------------------------------------------------------------------

class FaceSketch(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_SKETCHIFY, PROC_FACE, PROC_SETTINGS]

    def do_set_i18n(self, _name):
        return False

    def do_create_procedure(self, name):
        if name == PROC_SKETCHIFY:
            return self._sketchify(name)
        if name == PROC_FACE:
            return self._face(name)
        if name == PROC_SETTINGS:
            return self._settings(name)
        return None

    def _image_procedure(self, name, run_func, label, blurb, help_text):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_func, None)
        procedure.set_image_types("*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(label)
        procedure.add_menu_path(MENU)
        procedure.set_documentation(blurb, help_text, name)
        procedure.set_attribution("facesketch", "facesketch contributors", "2026")
        return procedure

    def _sketchify(self, name):
        p = self._image_procedure(
            name, run_sketchify, "_Sketchify photo\u2026", "Turn a photo into a pencil sketch",
            "Sends the active layer (or the selected part of it) to the facesketch backend and adds the "
            "pencil sketch as a new layer above it. The original layer is not changed.")
        choice = Gimp.Choice.new()
        for i, (value, label, help_text) in enumerate(jobs.SKETCH_STYLES):
            choice.add(STYLE_NICKS[value], i, label, help_text)
        p.add_choice_argument("style", "_Style", "Drawing style", choice, "style-1", RW)
        for i in (1, 2, 3):
            p.add_double_argument(f"mix-{i}", f"Mix weight of style _{i}",
                                  f"Weight of style {i} when the style is a mix", 0.0, 1.0,
                                  0.34 if i == 1 else 0.33, RW)
        p.add_double_argument("opacity", "_Blend over original (%)",
                              "Opacity of the sketch layer over the original", 0.0, 100.0, 100.0, RW)
        p.add_boolean_argument("add-depth", "Also add the _depth map as a layer",
                               "Add the depth map the sketch is drawn from as a second layer", False, RW)
        _add_advanced_arguments(p, "sketch")
        return p

    def _face(self, name):
        p = self._image_procedure(
            name, run_sketch_to_face, "Sketch to _face\u2026", "Draw a realistic face from a sketch",
            "Sends the active layer (or the selected part of it) to the facesketch backend, which finds the face "
            "drawn in it at any size and place, and adds the generated face as a new layer above it, where the "
            "drawing is; around the face the new layer is transparent (or paper). The original layer is not "
            "changed. The sliders choose how far each part follows the sketch (0) or a plausible face (1).")
        choice = Gimp.Choice.new()
        for i, (value, label) in enumerate(jobs.FACE_ALIGNS):
            choice.add(value, i, label, "")
        p.add_choice_argument("align", "_Align", "Where the face is: found anywhere in the layer, or the whole "
                              "layer is the face template (eyes, nose and mouth where the template puts them)",
                              choice, "auto", RW)
        choice = Gimp.Choice.new()
        for i, (value, label) in enumerate(jobs.FACE_OUTSIDES):
            choice.add(value, i, label, "")
        p.add_choice_argument("outside", "Around the _face", "What the new layer holds around the face it found: "
                              "transparent (the drawing shows through) or paper", choice, "transparent", RW)
        for arg, engine_name, label in FACE_ARGS:
            # defaults as the engine's and the CLI's: the most plausible face (GIMP registers procedures
            # before any backend is asked, so this default cannot come from the hello reply)
            p.add_double_argument(arg, "_" + label, f"{engine_name}: 0 = follow my lines, 1 = the most plausible face",
                                  0.0, 1.0, 1.0, RW)
        choice = Gimp.Choice.new()
        for i, (nick, label) in enumerate(jobs.GENDERS):
            choice.add(nick, i, label, "")
        p.add_choice_argument("gender", "_Gender", "Which face model to use", choice, "female", RW)
        p.add_boolean_argument("add-shadow", "Also add the _shadow guide as a layer",
                               "Add the shadow guide image as a second layer", False, RW)
        p.add_double_argument("opacity", "Blend over _original (%)",
                              "Opacity of the face layer over the sketch", 0.0, 100.0, 100.0, RW)
        _add_advanced_arguments(p, "face")
        return p

    def _settings(self, name):
        p = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_settings, None)
        p.set_menu_label("Face sketch _backend\u2026")
        p.add_menu_path(MENU)
        p.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
        p.set_documentation(
            "Connection to the facesketch backend",
            "Address, keys, timeout and auto-start of the facesketch backend, shared with the Krita plug-in. "
            "Non-interactively: empty strings / 0 keep the current value, '-' clears a key; 'save' writes the "
            "settings file, 'test' asks the backend for its status.", name)
        p.set_attribution("facesketch", "facesketch contributors", "2026")
        p.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode, Gimp.RunMode.INTERACTIVE, RW)
        p.add_string_argument("address", "_Address", "Backend address, e.g. tcp://127.0.0.1:5557", "", RW)
        p.add_double_argument("timeout", "_Timeout (s)", "Seconds to wait for a result (0 = keep)",
                              0.0, 3600.0, 0.0, RW)
        choice = Gimp.Choice.new()
        choice.add("keep", 0, "Keep", "Keep the current setting")
        choice.add("on", 1, "On", "Start a local backend when none answers")
        choice.add("off", 2, "Off", "Never start a backend")
        p.add_choice_argument("autostart", "Start a local backend a_utomatically",
                              "Start the backend install.py set up when none answers", choice, "keep", RW)
        p.add_string_argument("server-public-key", "_Server public key", "CurveZMQ server public key (z85)", "", RW)
        p.add_string_argument("client-public-key", "_Client public key", "CurveZMQ client public key (z85)", "", RW)
        p.add_string_argument("client-secret-key", "Client s_ecret key", "CurveZMQ client secret key (z85)", "", RW)
        p.add_boolean_argument("save", "Save", "Write the settings file", True, RW)
        p.add_boolean_argument("test", "Test", "Test the connection", True, RW)
        p.add_boolean_return_value("connected", "Connected", "Whether the backend answered", False, RW)
        p.add_string_return_value("answer", "Answer", "The backend's status in plain words", "", RW)
        return p


if __name__ == "__main__":
    Gimp.main(FaceSketch.__gtype__, sys.argv)
