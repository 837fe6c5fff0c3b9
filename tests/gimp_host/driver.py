# Runs INSIDE real GIMP 3 (python-fu-eval batch interpreter), driven by tests/test_gimp_host.py:
#   gimp-console-3.0 -i -n --batch-interpreter=python-fu-eval -b "exec(open('driver.py').read())" --quit
# Reads the scenario list from $FS_DRIVER_CONFIG (JSON), calls our procedures through the PDB exactly
# as a script would, and writes $FS_OUT/report.json plus raw pixel dumps (*.rgba, 8-bit RGBA rows).
# The test judges the report, never GIMP's exit code (a failing batch exits 64, a passing one 0,
# but a crash inside a scenario must still leave a report saying where).
import hashlib
import json
import os
import time
import traceback

from gi.repository import Gegl, Gimp, Gio

CFG = json.load(open(os.environ["FS_DRIVER_CONFIG"]))
OUT = CFG["out"]
U8 = "R'G'B'A u8"
FULL = "RGBA float"        # for "the original is unchanged" at the image's own precision
PDB = Gimp.get_pdb()
report = {"gimp": Gimp.version(), "scenarios": {}, "order": []}


def save_report():
    with open(os.path.join(OUT, "report.json.tmp"), "w") as f:
        json.dump(report, f, indent=1)
    os.replace(os.path.join(OUT, "report.json.tmp"), os.path.join(OUT, "report.json"))


def pixels(drawable, fmt=U8):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP))


def sha(data):
    return hashlib.sha256(data).hexdigest()


def dump(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    return name


def describe_layer(layer, dump_as=None):
    ok, x, y = layer.get_offsets()
    d = {"name": layer.get_name(), "width": layer.get_width(), "height": layer.get_height(),
         "offsets": [x, y], "opacity": layer.get_opacity(), "has_alpha": layer.has_alpha(),
         "type": int(layer.type()), "sha_u8": sha(pixels(layer))}
    if dump_as:
        d["dump"] = dump(dump_as, pixels(layer))
    mask = layer.get_mask()
    if mask is not None:
        d["mask"] = dump((dump_as or layer.get_name()) + ".mask",
                         bytes(mask.get_buffer().get(Gegl.Rectangle.new(0, 0, mask.get_width(), mask.get_height()),
                                                     1.0, "Y u8", Gegl.AbyssPolicy.CLAMP)))
    return d


def call(proc_name, image=None, drawables=None, **args):
    """Run one of our procedures non-interactively; returns (status name, message, return values)."""
    proc = PDB.lookup_procedure(proc_name)
    if proc is None:
        return "NOT_FOUND", f"procedure {proc_name} is not registered", [], 0.0
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if image is not None:
        cfg.set_property("image", image)
        cfg.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        cfg.set_property(key.replace("_", "-"), value)
    t0 = time.time()
    result = proc.run(cfg)
    status = result.index(0)
    values = [result.index(i) for i in range(1, result.length())]
    message = ""
    if status != Gimp.PDBStatusType.SUCCESS:
        message = values[0] if values and isinstance(values[0], str) else (PDB.get_last_error() or "")
    return status.value_nick.upper().replace("-", "_"), message, values, round(time.time() - t0, 3)


def load_image(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


def run_on(tag, image, layer, proc_name, **args):
    """Call a procedure on `layer` and record everything a test needs to judge it."""
    image.set_selected_layers([layer])
    before_layers = [l.get_id() for l in image.get_layers()]
    before_full = sha(pixels(layer, FULL))
    src = describe_layer(layer, dump_as=f"{tag}.src.rgba")
    status, message, values, secs = call(proc_name, image, [layer], **args)
    after_layers = image.get_layers()
    new = [l for l in after_layers if l.get_id() not in before_layers]
    rec = {"status": status, "message": message, "seconds": secs, "source": src,
           "source_unchanged": sha(pixels(layer, FULL)) == before_full and sha(pixels(layer)) == src["sha_u8"],
           "layers_before": len(before_layers), "layers_after": len(after_layers),
           "new_layers": [describe_layer(l, dump_as=f"{tag}.new{i}.rgba") for i, l in enumerate(new)],
           "image_base_type": int(image.get_base_type()), "precision": int(image.get_precision()),
           "undo_enabled": image.undo_is_enabled()}
    # new layers must sit directly above the source
    positions = {l.get_id(): image.get_item_position(l) for l in after_layers}
    rec["new_positions"] = [positions[l.get_id()] for l in new]
    rec["source_position"] = image.get_item_position(layer)
    return rec


def scenario_settings(c):
    status, message, values, secs = call("facesketch-backend-settings", address=c["address"],
                                         autostart=c.get("autostart", "off"), timeout=c.get("timeout", 0.0),
                                         save=c.get("save", True), test=True)
    return {"status": status, "message": message, "connected": values[0] if values else None,
            "answer": values[1] if len(values) > 1 else None, "seconds": secs}


def scenario_photo(c):
    """One of our procedures on the photo's layer (whole layer, no selection)."""
    image = load_image(c["photo"])
    layer = image.get_layers()[0]
    args = dict(c.get("args", {}))
    rec = run_on(c["tag"], image, layer, c["proc"], **args)
    if c.get("save_png"):
        # the before/after pictures for the docs: the image as GIMP composes it
        Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(c["save_png"]), None)
    image.delete()
    return rec


def scenario_selection(c):
    image = load_image(c["photo"])
    layer = image.get_layers()[0]
    x, y, w, h = c["ellipse"]
    image.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, w, h)
    rec = run_on(c["tag"], image, layer, c["proc"], **c.get("args", {}))
    ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    rec["selection_bounds"] = [x1, y1, x2, y2]
    # selection as a canvas-sized float mask (exact 0 = outside, 1 = inside), to check the new layer's mask
    sel = Gimp.Selection.save(image) if hasattr(Gimp.Selection, "save") else None
    if sel is not None:
        rec["selection_dump"] = dump(c["tag"] + ".selection", bytes(sel.get_buffer().get(
            Gegl.Rectangle.new(0, 0, image.get_width(), image.get_height()), 1.0, "Y float", Gegl.AbyssPolicy.CLAMP)))
    rec["canvas"] = [image.get_width(), image.get_height()]
    image.delete()
    return rec


def scenario_offset_layer(c):
    """A layer smaller than the canvas, moved away from the origin, holding part of the photo."""
    image = load_image(c["photo"])
    photo = image.get_layers()[0]
    x, y, w, h = c["rect"]
    data = bytes(photo.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, U8, Gegl.AbyssPolicy.CLAMP))
    small = Gimp.Layer.new(image, "small offset layer", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0,
                           Gimp.LayerMode.NORMAL)
    image.insert_layer(small, None, 0)
    small.set_offsets(*c["offsets"])
    buf = small.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), U8, data)
    buf.flush()
    rec = run_on(c["tag"], image, small, c["proc"], **c.get("args", {}))
    image.delete()
    return rec


def scenario_mode(c):
    """The photo converted to another mode/precision first (grayscale, indexed, 16-bit, float)."""
    image = load_image(c["photo"])
    mode = c["mode"]
    if mode == "gray":
        image.convert_grayscale()
    elif mode == "indexed":
        image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 32, False, False, "")
    elif mode == "u16":
        image.convert_precision(Gimp.Precision.U16_NON_LINEAR)
    elif mode == "float":
        image.convert_precision(Gimp.Precision.FLOAT_LINEAR)
    layer = image.get_layers()[0]
    rec = run_on(c["tag"], image, layer, c["proc"], **c.get("args", {}))
    image.delete()
    return rec


def scenario_big(c):
    """A blank image above the backend's pixel limit."""
    w, h = c["size"]
    image = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(image, "big", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    image.set_selected_layers([layer])
    status, message, values, secs = call(c["proc"], image, [layer], **c.get("args", {}))
    rec = {"status": status, "message": message, "layers_after": len(image.get_layers()), "seconds": secs}
    image.delete()
    return rec


def scenario_blank(c):
    """A plain white layer: nothing drawn on it."""
    w, h = c["size"]
    image = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(image, "blank", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    layer.fill(Gimp.FillType.WHITE)
    rec = run_on(c["tag"], image, layer, c["proc"], **c.get("args", {}))
    image.delete()
    return rec


def scenario_with_timeout(c):
    """scenario_photo with the settings' timeout set to c["timeout"] (restored afterwards)."""
    call("facesketch-backend-settings", timeout=c["timeout"], save=True, test=False)
    try:
        return scenario_photo(c)
    finally:
        call("facesketch-backend-settings", timeout=c["restore"], save=True, test=False)


def scenario_killed(c):
    """The user cancels in the progress bar: the test kills our plug-in process once this marker exists."""
    with open(os.path.join(OUT, "kill-plugin"), "w") as f:
        f.write(c["tag"])
    return scenario_photo(c)


SCENARIOS = {"settings": scenario_settings, "photo": scenario_photo, "selection": scenario_selection,
             "offset_layer": scenario_offset_layer, "mode": scenario_mode, "big": scenario_big, "blank": scenario_blank,
             "with_timeout": scenario_with_timeout, "killed": scenario_killed}

for c in CFG["scenarios"]:
    tag = c["tag"]
    report["order"].append(tag)
    t0 = time.time()
    try:
        rec = SCENARIOS[c["kind"]](c)
    except Exception:
        rec = {"status": "DRIVER_CRASH", "message": traceback.format_exc()}
    rec["wall_s"] = round(time.time() - t0, 3)
    report["scenarios"][tag] = rec
    save_report()
report["done"] = True
save_report()
