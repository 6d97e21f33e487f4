"""framewire: Python client for a framewire hub.

Store files (:class:`Client`), publish and receive live camera frames newest-first
(:class:`Publisher`, :class:`Subscriber`), and send or answer device commands
(:meth:`Client.command`, :class:`Device`). Pure standard library; numpy and OpenCV are used when
installed (image encoding/decoding, faster pure-Python hashing), and so is the ``blake3``
package (fast hashing).

    import framewire

    with framewire.Client("127.0.0.1:7878") as hub:
        hub.send_dir("photos")              # stored as photos/... on the hub

    pub = framewire.Publisher("127.0.0.1:7878", "cam")
    pub.send_jpg(jpeg_bytes)                # never blocks; newest frame wins

    for frame in framewire.Subscriber("127.0.0.1:7878", "cam"):
        detect(frame.image())               # always a fresh frame, however slow this is
"""

from . import blake3, protocol
from .client import Client, Downloaded, PingResult, RemoteFile
from .device import Device
from .errors import (
    CommandError,
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    FramewireError,
    HubError,
    IntegrityError,
    MissingDependency,
    ProtocolError,
    Timeout,
    Unauthorized,
    UnknownCommand,
    UnknownDevice,
    UploadError,
)
from .live import Frame, Publisher, PublisherStats, Subscriber
from .upload import Stored

__version__ = "0.1.0"

__all__ = [
    "Client",
    "CommandError",
    "CommandFailed",
    "CommandTimeout",
    "ConnectionLost",
    "Device",
    "Downloaded",
    "Frame",
    "FramewireError",
    "HubError",
    "IntegrityError",
    "MissingDependency",
    "PingResult",
    "ProtocolError",
    "Publisher",
    "PublisherStats",
    "RemoteFile",
    "Stored",
    "Subscriber",
    "Timeout",
    "Unauthorized",
    "UnknownCommand",
    "UnknownDevice",
    "UploadError",
    "blake3",
    "protocol",
]
