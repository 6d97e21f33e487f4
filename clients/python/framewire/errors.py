"""The exceptions framewire raises.

Every exception derives from :class:`FramewireError`. Where a built-in exception means the same
thing, the framewire one derives from it as well, so ``except TimeoutError`` and
``except ConnectionError`` work as expected.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

# Error codes (PROTOCOL.md §3.2), used by Error.code and Rejected.code.
ERROR_CODE_NAMES = {
    1: "NotFramewire",
    2: "UnsupportedVersion",
    3: "Malformed",
    4: "TooLarge",
    5: "BadPath",
    6: "Exists",
    7: "HashMismatch",
    8: "StorageFull",
    9: "NotFound",
    10: "Busy",
    11: "Unauthorized",
    12: "Forbidden",
    13: "Timeout",
    14: "ProtocolViolation",
    15: "SizeMismatch",
    16: "Cancelled",
    17: "ShuttingDown",
    18: "Internal",
}

# One sentence per code, for messages people read.
_CODE_HINTS = {
    1: "the hub did not recognise this as framewire (wrong port?)",
    2: "the hub does not speak this client's protocol version",
    3: "a message could not be decoded",
    4: "a limit was exceeded",
    5: "the remote path is not allowed",
    6: "a different file is already stored at that path (use overwrite=True to replace it)",
    7: "the bytes received do not match their BLAKE3 hash",
    8: "the hub's storage is full",
    9: "no such file on the hub",
    10: "another upload to the same path is in progress",
    11: "the token is missing or wrong",
    12: "this token does not allow that",
    13: "the peer took too long",
    14: "the message broke the protocol's sequence",
    15: "the file's size changed while it was being sent",
    16: "the upload was cancelled",
    17: "the hub is shutting down",
    18: "something went wrong inside the hub",
}


def code_name(code: int) -> str:
    """The name of an error code, e.g. ``5`` -> ``"BadPath"``; unknown codes (a newer hub) stay
    usable: ``"code 99"``."""
    return ERROR_CODE_NAMES.get(code, "code %d" % code)


class FramewireError(Exception):
    """Base class of every framewire exception."""


class HubError(FramewireError):
    """The hub refused a request or closed the connection with an error code.

    ``code`` is the numeric code (PROTOCOL.md §3.2), ``name`` its name (``"BadPath"``),
    ``message`` the hub's own words, ``request_id`` the request it answers (0: the connection),
    ``path`` the remote path concerned, when there is one.
    """

    def __init__(self, code: int, message: str = "", request_id: int = 0, path: Optional[str] = None):
        self.code = code
        self.name = code_name(code)
        self.message = message
        self.request_id = request_id
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = " (%s)" % self.path if self.path else ""
        said = self.message or _CODE_HINTS.get(self.code, "")
        return (
            "hub refused%s: %s: %s" % (where, self.name, said)
            if said
            else "hub refused%s: %s" % (where, self.name)
        )


class Unauthorized(HubError):
    """The hub refused the token (``Error{Unauthorized}`` at the handshake)."""


class ProtocolError(FramewireError):
    """The peer sent bytes that break the protocol: an undecodable message or one that makes no
    sense at that point. ``code`` is the error code that describes it (Malformed, TooLarge,
    NotFramewire, ProtocolViolation)."""

    def __init__(self, message: str, code: int = 3):
        self.code = code
        super().__init__(message)


class ConnectionLost(FramewireError, ConnectionError):
    """The connection to the hub failed or closed."""


class Timeout(FramewireError, TimeoutError):
    """Nothing arrived within the time limit."""


class IntegrityError(FramewireError):
    """Downloaded bytes do not match the hub's BLAKE3 hash, or a local file changed while it was
    being sent."""


class UploadError(FramewireError):
    """Some files of a batch were not stored. ``failures`` lists ``(local, remote, error)``;
    ``results`` holds the :class:`~framewire.client.Stored` of the files that were."""

    def __init__(self, failures: Sequence[tuple], results: Sequence = ()):
        self.failures: List[tuple] = list(failures)
        self.results = list(results)
        first = self.failures[0]
        more = len(self.failures) - 1
        text = "%d of %d files not stored; first: %s -> %s: %s" % (
            len(self.failures),
            len(self.failures) + len(self.results),
            first[0],
            first[1],
            first[2],
        )
        if more:
            text += " (and %d more, see .failures)" % more
        super().__init__(text)


class CommandError(FramewireError):
    """A device command did not succeed. ``status`` is the Reply status (1 Failed, 2
    UnknownDevice, 3 UnknownCommand, 4 Timeout); ``text`` is the body (the device's or the hub's
    explanation)."""

    status = 0

    def __init__(self, device: str, command: str, text: str):
        self.device = device
        self.command = command
        self.text = text
        super().__init__(self._describe())

    def _describe(self) -> str:
        return "%s %s: %s" % (self.device, self.command, self.text)


class CommandFailed(CommandError):
    """The device ran the command and it failed (Reply status Failed)."""

    status = 1


class UnknownDevice(CommandError):
    """No device of that name is connected to the hub (Reply status UnknownDevice)."""

    status = 2

    def _describe(self) -> str:
        return "no device named %r is connected to the hub" % self.device


class UnknownCommand(CommandError):
    """The device does not know the command (Reply status UnknownCommand)."""

    status = 3

    def _describe(self) -> str:
        extra = ": " + self.text if self.text else ""
        return "device %r does not know the command %r%s" % (self.device, self.command, extra)


class CommandTimeout(CommandError, TimeoutError):
    """The device did not answer in time (Reply status Timeout, sent by the hub)."""

    status = 4

    def _describe(self) -> str:
        return self.text or "device %r did not answer %r in time" % (self.device, self.command)


class MissingDependency(FramewireError, ImportError):
    """An optional package (OpenCV, numpy) is needed for this call and is not installed."""
