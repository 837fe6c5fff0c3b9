"""The one place the plug-in imports Qt from.

Krita 5 embeds PyQt5; Krita 6 moves to PyQt6, whose enums are scoped (`Qt.AlignmentFlag.AlignLeft`).
Every other module imports Qt names and the enum constants below from here, so the port is a change
to this file only.
"""
from PyQt5.QtCore import QObject, QTimer, QSocketNotifier, Qt, pyqtSignal, QByteArray, QEvent, QPoint
from PyQt5.QtGui import QImage, QPainter, QColor, QPen, QFont
from PyQt5.QtWidgets import (
    QApplication, QWidget, QDialog, QDialogButtonBox, QVBoxLayout, QHBoxLayout, QFormLayout, QGridLayout,
    QGroupBox, QLabel, QPushButton, QCheckBox, QSlider, QComboBox, QProgressBar, QLineEdit, QDoubleSpinBox,
    QMessageBox, QSizePolicy, QScrollArea, QFrame, QPlainTextEdit,
)

Signal = pyqtSignal

# Enum values, named once so callers never spell a PyQt5-only path.
SOCKET_READ = QSocketNotifier.Read
HORIZONTAL = Qt.Horizontal
VERTICAL = Qt.Vertical
ALIGN_RIGHT = Qt.AlignRight | Qt.AlignVCenter
NO_BUTTON = Qt.NoButton
RICH_TEXT = Qt.RichText
PLAIN_TEXT = Qt.PlainText
# Krita's 8-bit RGBA pixelData is B,G,R,A in memory = QImage ARGB32 (non-premultiplied) on little-endian.
FORMAT_ARGB32 = QImage.Format_ARGB32
COMPOSITION_SOURCE_OVER = QPainter.CompositionMode_SourceOver
ANTIALIASING = QPainter.Antialiasing
DASH_LINE = Qt.DashLine
BUTTON_OK = QDialogButtonBox.Ok
BUTTON_CANCEL = QDialogButtonBox.Cancel
ECHO_PASSWORD = QLineEdit.Password
SIZE_EXPANDING = QSizePolicy.Expanding
SIZE_PREFERRED = QSizePolicy.Preferred


def exec_dialog(dialog) -> int:
    """QDialog.exec_() in PyQt5, exec() in PyQt6."""
    return dialog.exec_()


def image_bytes(image: "QImage") -> bytes:
    """The bytes of a QImage, without the 32-bit scanline padding (width*4 for ARGB32, so none)."""
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    return bytes(ptr)
