"""The GIMP plug-in's GIMP-free part: engine parameters, output choice, layer names, messages.
(The plug-in in real GIMP is tests/test_gimp_host.py.)"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "plugin", "gimp",
                                "facesketch"))
import job_spec  # noqa: E402
from facesketch_client import settings as fs_settings  # noqa: E402
from facesketch_client.client import BackendError, BackendTimeout, BackendUnreachable  # noqa: E402

SKETCH_INFO = {"name": "sketch", "ready": True, "outputs": ["sketch", "depth"], "default_outputs": ["sketch"],
               "params": [{"name": "style"}, {"name": "style_mix"}, {"name": "strength"}]}
ECHO_INFO = {"name": "echo", "ready": True, "outputs": ["image"], "default_outputs": ["image"],
             "params": [{"name": "delay"}]}


def test_style_params():
    assert job_spec.sketch_params("style-2", (0.3, 0.3, 0.4)) == {"style": "2", "strength": 1.0}
    mix = job_spec.sketch_params("mix", (1.0, 1.0, 2.0))
    assert mix["style"] == "mix" and mix["style_mix"] == pytest.approx([0.25, 0.25, 0.5])
    with pytest.raises(ValueError, match="at least one weight"):
        job_spec.sketch_params("mix", (0.0, 0.0, 0.0))


def test_params_are_filtered_to_what_the_engine_declares():
    params = job_spec.sketch_params("mix", (1, 0, 0))
    assert job_spec.supported_params(params, SKETCH_INFO) == params
    assert job_spec.supported_params(params, ECHO_INFO) == {}


def test_face_params():
    values = {arg: 0.1 * i for i, (arg, _e, _l) in enumerate(job_spec.FACE_SLIDERS)}
    params = job_spec.face_params(values, "male")
    assert params["gender"] == "male"
    assert params["blend_left_eye"] == 0.0 and params["master"] == pytest.approx(0.5)
    assert set(params) == {"blend_left_eye", "blend_right_eye", "blend_nose", "blend_mouth", "blend_remainder",
                           "master", "gender"}


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
    msg = job_spec.explain_backend_error(BackendUnreachable("unreachable", "backend not reachable at X"), s)
    assert "backend not reachable at X." in msg
    assert "starts with: /opt/fs/.venv/bin/facesketch serve" in msg
    assert "Start a local backend automatically" in msg and "Face sketch backend" in msg
    s.autostart, s.backend_command = True, []
    msg = job_spec.explain_backend_error(BackendUnreachable("unreachable", "backend not reachable at X"), s)
    assert "no local backend is set up here: run python3 install.py" in msg
    msg = job_spec.explain_backend_error(BackendTimeout("timeout", "no answer within 5 s"), s)
    assert msg.startswith("no answer within 5 s\n") and "raise the timeout in Filters" in msg
    assert job_spec.not_ready_message("sketch", "no trained weights in models/weights") == \
        "The backend's 'sketch' engine is not ready: no trained weights in models/weights"
    assert "megapixels" in job_spec.explain_backend_error(BackendError("too_large", "2.0 megapixels"), s)
    assert "1100x1000 = 1.1 megapixels" in job_spec.too_large_message(1100, 1000, 1_000_000)


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
