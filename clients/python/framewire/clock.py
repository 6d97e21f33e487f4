"""Clock offset between this machine and the hub, from Ping/Pong exchanges (PROTOCOL.md §2.4)."""

from __future__ import annotations

import time
from typing import NamedTuple, Optional


def now_us() -> int:
    """This machine's wall clock, µs since the Unix epoch (the protocol's time unit)."""
    return time.time_ns() // 1000


class ClockSample(NamedTuple):
    """One Ping/Pong exchange: when the Ping left (our clock), the hub's clock in the Pong, when the
    Pong arrived (our clock). All µs."""

    sent_us: int
    remote_us: int
    received_us: int

    @property
    def rtt_us(self) -> int:
        return max(0, self.received_us - self.sent_us)

    @property
    def offset_us(self) -> int:
        """Hub clock minus ours; accurate to ± rtt/2."""
        return self.remote_us - (self.sent_us + self.received_us) // 2


class ClockEstimate:
    """Keeps the sample with the smallest round trip (on a tie, the newer one)."""

    def __init__(self) -> None:
        self.best: Optional[ClockSample] = None

    def add(self, sample: ClockSample) -> None:
        if self.best is None or sample.rtt_us <= self.best.rtt_us:
            self.best = sample

    @property
    def offset_us(self) -> int:
        """Hub clock minus ours, µs (0 before the first sample)."""
        return self.best.offset_us if self.best else 0

    @property
    def rtt_us(self) -> Optional[int]:
        return self.best.rtt_us if self.best else None

    def to_hub(self, local_us: int) -> int:
        return local_us + self.offset_us

    def to_local(self, hub_us: int) -> int:
        return hub_us - self.offset_us
