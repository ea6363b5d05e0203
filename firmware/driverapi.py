"""What a hardware driver offers the line manager (firmware-internal, below the Line API).

A driver owns a group of channels (a GSM module: 1; an E1 span: 30). The line manager gives each
channel a global index in the line-state core; the driver reports hardware events for its local
channel numbers through ``report`` and carries out the actions the core returns.

A driver that carries call audio through the box also has ``attach_media(plane)``: called once
before ``start``, it adds a "line" leg named after each such channel to the media plane
(firmware/media/plane.py), pushes the frames it reads into it and writes what the leg outputs.
The line manager then bridges those channels in the plane and confirms the bridge on the first
debtor frame delivered to the position; ``Driver.bridge`` is only used for channels without a leg.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol


@dataclass(slots=True)
class HwReport:
    """One hardware event on one of the driver's channels (``event`` is a cext EV_HW_* code)."""

    channel: int  # local channel number within the driver, 0-based
    event: int
    cause: int = 0  # Q.850 cause for releases, 0 when none
    reason: str = ""  # readable reason (out of service, failure detail)
    caller: str | None = None  # inbound caller id
    info: dict = field(default_factory=dict)


Report = Callable[[HwReport], None]


class Driver(Protocol):
    kind: str  # "gsm" or "e1"
    name: str

    def channel_names(self) -> list[str]: ...

    async def start(self, report: Report) -> None: ...

    async def stop(self) -> None: ...

    # How long an unanswered call rings before this driver gives up (from its profile).
    ring_timeout_s: float

    async def dial(self, channel: int, number: str, *, ring_timeout_s: float | None = None
                   ) -> None: ...

    async def hangup(self, channel: int, cause: int = 16) -> None: ...

    async def answer(self, channel: int) -> None: ...

    async def bridge(self, channel: int, position: str) -> None: ...

    def health(self, channel: int) -> dict: ...
