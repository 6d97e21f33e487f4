"""Stand-in for the Network-Video-Transmission repository's as_utils.utils, which seed 001's
client imports: the three functions it uses, with the behaviour the article describes
(buf_encode pads str(data) with spaces to `length` bytes)."""
import cv2
import numpy as np


def buf_encode(data, length):
    return str(data).ljust(length).encode()


def next_frame(handle):
    _, frame = handle.read()
    return frame


def encode(image, q=100):
    _, encoded = cv2.imencode('.jpg', image, [int(cv2.IMWRITE_JPEG_QUALITY), q])
    return np.array(encoded)
