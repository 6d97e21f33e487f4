"""Stand-in for OpenCV in seed 001's client (not installed here, and no camera): VideoCapture
yields the JPEG files of $SEED_FRAMES (sorted, in a loop) at about 30 frames a second, already
encoded, and imencode passes them through."""
import os
import time

IMWRITE_JPEG_QUALITY = 1


class error(Exception):
    pass


class VideoCapture:
    def __init__(self, index):
        d = os.environ['SEED_FRAMES']
        self.files = [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith('.jpg')]
        self.i = 0

    def read(self):
        time.sleep(1 / 30)
        with open(self.files[self.i % len(self.files)], 'rb') as f:
            self.i += 1
            return True, f.read()


def imencode(ext, image, params):
    return True, image
