"""The host-free part both plug-ins share (facesketch_client.jobs): engine parameters, capabilities, output
choice, layer names, messages. (The plug-ins in real GIMP and Krita: tests/test_gimp_host.py, test_krita_host.py.)"""
import subprocess
import sys

import pytest

from facesketch_client import jobs as job_spec
from facesketch_client import settings as fs_settings
from facesketch_client.client import BackendError, BackendTimeout, BackendUnreachable

GIMP_MENU = "Filters \u25b8 Artistic \u25b8 Face sketch backend\u2026"

SKETCH_INFO = {"name": "sketch", "ready": True, "outputs": ["sketch", "depth"], "default_outputs": ["sketch"],
               "params": [{"name": "style"}, {"name": "style_mix"}, {"name": "strength"}]}
ECHO_INFO = {"name": "echo", "ready": True, "outputs": ["image"], "default_outputs": ["image"],
             "params": [{"name": "delay"}]}


def test_style_params():
    assert job_spec.sketch_params("2", (0.3, 0.3, 0.4)) == {"style": "2", "strength": 1.0}
    assert job_spec.sketch_params("3", strength=0.5) == {"style": "3", "strength": 0.5}
    with pytest.raises(ValueError, match="Unknown sketch style"):
        job_spec.sketch_params("style-2")
    mix = job_spec.sketch_params("mix", (1.0, 1.0, 2.0))
    assert mix["style"] == "mix" and mix["style_mix"] == pytest.approx([0.25, 0.25, 0.5])
    with pytest.raises(ValueError, match="at least one weight"):
        job_spec.sketch_params("mix", (0.0, 0.0, 0.0))


def test_params_are_filtered_to_what_the_engine_declares():
    params = job_spec.sketch_params("mix", (1, 0, 0))
    assert job_spec.supported_params(params, SKETCH_INFO) == params
    assert job_spec.supported_params(params, ECHO_INFO) == {}


def test_face_params():
    values = {name: 0.1 * i for i, (name, _label) in enumerate(job_spec.FACE_SLIDERS)}
    params = job_spec.face_params(values, "male")
    assert params["gender"] == "male"
    assert params["blend_left_eye"] == 0.0 and params["master"] == pytest.approx(0.5)
    assert set(params) == {"blend_left_eye", "blend_right_eye", "blend_nose", "blend_mouth", "blend_remainder",
                           "master", "gender", "align", "outside"}
    # by default the engine finds the face in the layer and leaves the rest of the result layer transparent
    assert params["align"] == "auto" and params["outside"] == "transparent"
    assert job_spec.face_params(values, "male", outside="paper")["outside"] == "paper"
    # a face canvas is the template itself: "outside" does not count there and is not sent
    template = job_spec.face_params(values, "female", align="template")
    assert template["align"] == "template" and "outside" not in template
    with pytest.raises(ValueError, match="Unknown face alignment 'center'"):
        job_spec.face_params(values, "female", align="center")
    with pytest.raises(ValueError, match="choose one of transparent, paper"):
        job_spec.face_params(values, "female", outside="white")
    # an older backend's face engine has neither parameter: the host's filter drops them
    old_engine = {"name": "face", "params": [{"name": n} for n, _label in job_spec.FACE_SLIDERS] + [{"name": "gender"}]}
    assert set(job_spec.supported_params(params, old_engine)) == set(params) - {"align", "outside"}


def test_outputs():
    assert job_spec.choose_outputs(SKETCH_INFO, None) is None
    assert job_spec.choose_outputs(SKETCH_INFO, "depth") == ["sketch", "depth"]
    assert job_spec.choose_outputs(ECHO_INFO, "depth") is None  # not offered: the defaults


def test_layer_names():
    assert job_spec.layer_name("sketch", "Portrait", "style 2") == "Sketch (style 2) of Portrait"
    assert job_spec.layer_name("depth", "Portrait", "style 2") == "Depth map of Portrait"
    assert job_spec.layer_name("face", "Lines", "female") == "Face (female) of Lines"
    assert job_spec.style_label(job_spec.sketch_params("mix", (1, 1, 2))) == "style mix 0.25/0.25/0.5"


def test_messages_say_what_to_do():
    s = fs_settings.Settings(address="tcp://127.0.0.1:5999", autostart=False,
                             backend_command=["/opt/fs/.venv/bin/facesketch", "serve"])
    explain = lambda err: job_spec.explain_backend_error(err, s, "GIMP", GIMP_MENU)  # noqa: E731
    msg = explain(BackendUnreachable("unreachable", "backend not reachable at X"))
    assert msg.startswith("Backend not reachable at X.\n")
    assert "starts with: /opt/fs/.venv/bin/facesketch serve" in msg
    assert "To have GIMP start it" in msg and "Start a local backend automatically" in msg and "Face sketch backend" in msg
    krita = job_spec.explain_backend_error(BackendUnreachable("unreachable", "x"), s, "Krita", "the docker's Settings")
    assert "To have Krita start it" in krita and "in the docker's Settings" in krita
    s.autostart, s.backend_command = True, []
    msg = explain(BackendUnreachable("unreachable", "backend not reachable at X"))
    assert "no local backend is set up here: run python3 install.py" in msg
    msg = explain(BackendTimeout("timeout", "no answer within 5 s"))
    assert msg.startswith("No answer within 5 s\n") and "raise the timeout in Filters" in msg
    assert job_spec.not_ready_message("sketch", "no trained weights in models/weights") == \
        "The backend's 'sketch' engine is not ready: no trained weights in models/weights"
    assert "megapixels" in explain(BackendError("too_large", "2.0 megapixels"))
    assert explain(BackendError("not_ready", "the 'face' engine is not ready: no weights")) == \
        "The 'face' engine is not ready: no weights"
    assert "1100x1000 = 1.1 megapixels" in job_spec.too_large_message(1100, 1000, 1_000_000)


def test_no_face_message_says_what_to_draw_and_the_alternative():
    s = fs_settings.Settings(address="tcp://127.0.0.1:5999")
    backend_text = "no face was found in this layer. Draw a face ..., or use align 'template'"
    gimp = job_spec.explain_backend_error(BackendError("no_face", backend_text), s, "GIMP", GIMP_MENU)
    krita = job_spec.explain_backend_error(BackendError("no_face", backend_text), s, "Krita", "the docker's Settings")
    for msg in (gimp, krita):
        assert msg.startswith("No face was found in this layer. Draw the face as a line drawing: two eyes, a nose "
                              "and a mouth inside a head outline")
        assert "align 'template'" not in msg  # the engine's parameter name is not the user's word
    assert "set Align to \u201cThe layer is the face template\u201d in Sketch to face\u2026" in gimp
    assert "\u201cNew face canvas\u201d in the Face Sketch docker" in krita and "Align" not in krita
    assert job_spec.FACE_ALIGNS[1] == ("template", "The layer is the face template")  # the label GIMP's hint names


def test_result_notes_as_one_status_line():
    from facesketch_client.client import Result
    result = Result({"face": None}, notes=["found 2 faces in the layer and drew the largest: the face at x 560, "
                                           "y 80, 325 x 400 pixels", "  second\nremark.  "])
    assert job_spec.result_notes(result) == list(result.notes)
    assert job_spec.notes_text(job_spec.result_notes(result)) == (
        "Found 2 faces in the layer and drew the largest: the face at x 560, y 80, 325 x 400 pixels. Second remark.")
    assert job_spec.result_notes({"face": None}) == []     # a plain dict (an older client): no notes
    assert job_spec.notes_text([]) == "" and job_spec.notes_text(["", " "]) == ""


def test_connection_answer_in_plain_words():
    caps = {"version": "0.1.0", "protocol": 1, "device": "cpu", "max_pixels": 16_000_000,
            "engines": [{"name": "echo", "ready": True},
                        {"name": "sketch", "ready": False, "reason": "no trained weights yet"}]}
    text = job_spec.describe_hello(caps, "tcp://127.0.0.1:5557")
    assert "Connected to the facesketch backend at tcp://127.0.0.1:5557." in text
    assert "Version 0.1.0, protocol 1, running on cpu." in text
    assert "echo: ready" in text and "sketch: not ready \u2014 no trained weights yet" in text
    assert job_spec.unknown_engine_message("face", caps).startswith("The backend has no 'face' engine")


def test_extra_params():
    assert job_spec.parse_extra_params("") == {}
    assert job_spec.parse_extra_params(' {"k": 5, "delay": 0.5} ') == {"k": 5, "delay": 0.5}
    for bad in ("[1]", "k=5"):
        with pytest.raises(ValueError, match="JSON object"):
            job_spec.parse_extra_params(bad)


FACE_INFO = {"name": "face", "ready": False, "reason": "no weights",
             "params": [{"name": "blend_nose", "default": 1.0}, {"name": "gender", "default": "female"}],
             "details": {"canvas": 256, "boxes": {"left_eye": [54, 78, 64], "right_eye": [128, 78, 64],
                                                  "nose": [91, 116, 80], "mouth": [85, 151, 96]},
                         "defaults": {"blend_nose": 1.0, "gender": "female"}}}


def test_face_layout_and_defaults_come_from_the_hello_details():
    caps = {"engines": [FACE_INFO, ECHO_INFO]}
    layout = job_spec.face_layout(caps)
    assert layout.canvas == 256 and layout.boxes["nose"] == (91, 116, 80)
    assert set(layout.boxes) == {part for part, _label in job_spec.FACE_PARTS}
    assert job_spec.face_layout({"engines": [ECHO_INFO]}) is None  # no face engine
    assert job_spec.face_layout({"engines": [dict(FACE_INFO, details={"canvas": 256})]}) is None  # no boxes
    assert job_spec.face_layout(None) is None
    assert job_spec.param_defaults(FACE_INFO) == {"blend_nose": 1.0, "gender": "female"}
    assert job_spec.param_defaults(ECHO_INFO) == {}


def test_engine_problem_in_plain_words():
    caps = {"engines": [FACE_INFO, ECHO_INFO]}
    assert job_spec.engine_problem(None, "face") is None  # nothing known yet
    assert job_spec.engine_problem(caps, "echo") is None
    assert job_spec.engine_problem(caps, "face") == "The backend's 'face' engine is not ready: no weights"
    assert job_spec.engine_problem(caps, "sketch").startswith("The backend has no 'sketch' engine (it offers: face, echo)")
    assert job_spec.supported_params({"delay": 1, "x": 2}, None) == {"delay": 1, "x": 2}  # unknown engine: all


def test_the_client_package_imports_without_zmq_and_without_touching_sys_path():
    """The plug-ins import facesketch_client (and its loader) before the vendored pyzmq is on sys.path."""
    code = ("import sys; before = list(sys.path); import facesketch_client, facesketch_client.jobs, "
            "facesketch_client.vendored; assert sys.path == before, 'sys.path changed'; "
            "assert 'zmq' not in sys.modules and 'msgpack' not in sys.modules, 'zmq imported'; "
            "from facesketch_client import Client; assert 'zmq' in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_vendored_load_is_the_one_sys_path_change_and_explains_a_missing_package(tmp_path):
    from facesketch_client import vendored
    plugin = tmp_path / "plugin"
    broken = plugin / vendored.VENDOR_DIR / vendored.current_tag() / "msgpack"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError(\"No module named 'msgpack'\", name='msgpack')\n")
    code = ("import sys; from facesketch_client import vendored; before = list(sys.path)\n"
            "try:\n"
            f"    vendored.load({str(plugin)!r})\n"
            "except ImportError as exc:\n"
            "    assert 'needs the msgpack package' in str(exc) and 'install.py' in str(exc), exc\n"
            f"    assert sys.path == [{str(broken.parent)!r}] + before, sys.path[:2]\n"
            "else:\n"
            "    raise AssertionError('no ImportError')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    code = ("import sys; from facesketch_client import vendored; before = list(sys.path)\n"
            f"assert vendored.load({str(tmp_path)!r}) is None and sys.path == before\n")  # none vendored: the host's own
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
