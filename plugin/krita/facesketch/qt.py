"""The one place the plug-in imports Qt from.

Krita 5 embeds PyQt5; Krita 6 moves to PyQt6, whose enums are scoped (`Qt.AlignmentFlag.AlignRight`).
Every other module imports Qt classes and the enum constants below from here, so the port is a change
to this file only.
"""
from PyQt5.QtCore import QObject, QTimer, QSocketNotifier, Qt, pyqtSignal, QByteArray
from PyQt5.QtGui import QImage, QPainter, QColor, QPen, QFont
from PyQt5.QtWidgets import (
    QApplication, QWidget, QDialog, QDialogButtonBox, QVBoxLayout, QHBoxLayout, QFormLayout, QGridLayout,
    QGroupBox, QLabel, QPushButton, QCheckBox, QSlider, QComboBox, QProgressBar, QLineEdit, QDoubleSpinBox,
    QScrollArea,
)

Signal = pyqtSignal

# Enum values, named once so callers never spell a PyQt5-only path.
SOCKET_READ = QSocketNotifier.Read
HORIZONTAL = Qt.Horizontal
VERTICAL = Qt.Vertical
ALIGN_RIGHT = Qt.AlignRight | Qt.AlignVCenter
NO_BUTTON = Qt.NoButton
# Krita's 8-bit RGBA pixelData is B,G,R,A in memory = QImage ARGB32 (non-premultiplied) on little-endian.
FORMAT_ARGB32 = QImage.Format_ARGB32
ANTIALIASING = QPainter.Antialiasing
DASH_LINE = Qt.DashLine
BUTTON_OK = QDialogButtonBox.Ok
BUTTON_CANCEL = QDialogButtonBox.Cancel
ECHO_PASSWORD = QLineEdit.Password


def image_bytes(image: "QImage") -> bytes:
    """The bytes of a 32-bit QImage (rows are already 4-byte aligned, so there is no padding to strip)."""
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    return bytes(ptr)
