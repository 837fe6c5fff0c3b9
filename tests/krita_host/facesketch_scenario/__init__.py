"""Test-only Krita plug-in: plays tests/krita_host/facesketch_scenario/scenario.py against the real Face Sketch
plug-in, through Krita's API and the docker's widgets (found by objectName), then quits Krita.

tests/test_krita_host.py installs it next to the real plug-in in a temporary HOME only, and names the
scenario's JSON config in FACESKETCH_KRITA_SCENARIO; without that variable it does nothing.
"""
import os

from krita import Extension, Krita

CONFIG_ENV = "FACESKETCH_KRITA_SCENARIO"


class ScenarioExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self._started = False

    def setup(self):
        pass

    def createActions(self, window):
        path = os.environ.get(CONFIG_ENV)
        if path and not self._started:
            self._started = True
            from PyQt5.QtCore import QTimer
            from . import scenario
            QTimer.singleShot(1500, lambda: scenario.start(path))


Krita.instance().addExtension(ScenarioExtension(Krita.instance()))
