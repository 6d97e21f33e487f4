"""Image encoding and decoding for live frames, with OpenCV and numpy when they are installed.

framewire itself moves encoded bytes and needs neither; these helpers are for
:meth:`Publisher.send_image <framewire.live.Publisher.send_image>` and
:meth:`Frame.image <framewire.live.Frame.image>`.
"""

from __future__ import annotations

from typing import Tuple

from . import protocol as p
from .errors import MissingDependency

_OPENCV_HINT = "pip install opencv-python-headless (or apt install python3-opencv)"


def _cv2():
    try:
        import cv2
    except ImportError:
        raise MissingDependency("this needs OpenCV, which is not installed: " + _OPENCV_HINT) from None
    return cv2


def _np():
    try:
        import numpy
    except ImportError:
        raise MissingDependency("this needs numpy, which is not installed: pip install numpy") from None
    return numpy


def encode_jpeg(image, quality: int = 90) -> Tuple[bytes, int, int]:
    """Encodes an OpenCV image (a numpy array, BGR or grey) as JPEG. Returns
    ``(jpeg_bytes, width, height)``.

    Raises MissingDependency without OpenCV, ValueError if OpenCV cannot encode it."""
    cv2 = _cv2()
    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(
            "OpenCV could not encode the image as JPEG (shape %r)" % (getattr(image, "shape", None),)
        )
    height, width = image.shape[:2]
    return buf.tobytes(), int(width), int(height)


def decode(payload: bytes, format: int, width: int, height: int):
    """A frame's payload as a numpy array: JPEG and PNG through OpenCV (BGR, as ``cv2.imread``
    gives), raw RGB8 as ``height x width x 3`` (RGB order), GRAY8 as ``height x width``.

    Raises MissingDependency without OpenCV (JPEG, PNG) or numpy (raw formats), ValueError if the
    bytes do not decode."""
    if format in (p.FORMAT_JPEG, p.FORMAT_PNG):
        cv2 = _cv2()
        np = _np()
        image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("OpenCV could not decode the frame (%d bytes)" % len(payload))
        return image
    if format in (p.FORMAT_RGB8, p.FORMAT_GRAY8):
        np = _np()
        channels = 3 if format == p.FORMAT_RGB8 else 1
        if len(payload) != width * height * channels:
            raise ValueError(
                "raw frame of %d bytes does not match %dx%dx%d" % (len(payload), width, height, channels)
            )
        shape = (height, width, 3) if channels == 3 else (height, width)
        return np.frombuffer(payload, dtype=np.uint8).reshape(shape)
    raise ValueError("unknown frame format %d" % format)


# Start-of-frame markers carry the image size: SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(jpeg: bytes) -> Tuple[int, int]:
    """``(width, height)`` read from a JPEG's start-of-frame header, or ``(0, 0)`` if it cannot be
    found. Walks the marker segments from the start: cheap, no decoding."""
    n = len(jpeg)
    if n < 4 or jpeg[0] != 0xFF or jpeg[1] != 0xD8:
        return 0, 0
    i = 2
    while i + 4 <= n:
        if jpeg[i] != 0xFF:
            return 0, 0
        marker = jpeg[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length field
            i += 2
            continue
        length = (jpeg[i + 2] << 8) | jpeg[i + 3]
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                return 0, 0
            height = (jpeg[i + 5] << 8) | jpeg[i + 6]
            width = (jpeg[i + 7] << 8) | jpeg[i + 8]
            return width, height
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no SOF before it
            return 0, 0
        i += 2 + length
    return 0, 0
