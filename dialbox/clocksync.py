"""The clock as a compliance input: is the kernel's clock synchronised (adjtimex)?

Calling hours are the law; a box whose clock drifted calls people at night. The kernel knows
whether NTP (chrony, systemd-timesyncd, ntpd) keeps the clock in sync: ``adjtimex`` returns
TIME_ERROR and sets STA_UNSYNC when nothing does. An unsynchronised clock is shown everywhere
and, unless the shop turned this off, holds automatic dialing with that reason.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import structlog

from firmware.errors import N_, Msg

log = structlog.get_logger(__name__)

TIME_ERROR = 5
STA_UNSYNC = 0x0040
HOLD = "clock"  # the dialer's hold key
HOLD_TEXT = Msg("the clock is not synchronised: legal calling hours cannot be checked")
STATES = {0: "ok", 1: "leap second to insert", 2: "leap second to delete",
          3: "leap second in progress", 4: "leap second done", 5: "not synchronised"}


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """``struct timex`` of <sys/timex.h> (Linux)."""

    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("constant", ctypes.c_long),
                ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time", _Timeval), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long),
                ("jitter", ctypes.c_long), ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
                ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_reserved", ctypes.c_int * 11)]


@dataclass(frozen=True, slots=True)
class ClockState:
    synchronized: bool
    state: int  # adjtimex's return value (TIME_OK .. TIME_ERROR), -1 when it could not be read
    max_error_ms: float | None = None
    est_error_ms: float | None = None
    error: str = ""

    @property
    def text(self) -> Msg:
        if self.state < 0:
            return Msg("unknown (cannot read the kernel's clock state: {error})",
                       error=self.error)
        if not self.synchronized:
            return Msg("NOT synchronised (no NTP keeps the clock right)")
        return Msg("synchronised, max error {ms} ms", ms=f"{self.max_error_ms:g}")


_libc = None


def read_kernel() -> ClockState:
    """The kernel's view: ``adjtimex`` with modes 0 reads without changing anything."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        ret = _libc.adjtimex(ctypes.byref(tx))
        if ret < 0:
            return ClockState(False, -1, error=f"adjtimex: errno {ctypes.get_errno()}")
    except (OSError, AttributeError) as exc:
        return ClockState(False, -1, error=str(exc))
    synced = ret != TIME_ERROR and not tx.status & STA_UNSYNC
    return ClockState(synced, ret, tx.maxerror / 1000, tx.esterror / 1000)


READER = read_kernel  # tests put a simulated kernel here


class ClockWatch:
    """Reads the sync state at boot and every ``interval_s``; holds the dialers when required."""

    def __init__(self, app, *, require_sync: bool, interval_s: float = 60.0) -> None:
        self.app = app
        self.require_sync = require_sync
        self.interval_s = interval_s
        self.state: ClockState | None = None
        self.checked_at: float | None = None

    @property
    def holding(self) -> bool:
        return self.require_sync and self.state is not None and not self.state.synchronized

    def check(self) -> ClockState:
        state = READER()
        was = self.state
        self.state, self.checked_at = state, self.app.clock.wall()
        if was is None or was.synchronized != state.synchronized:
            if state.synchronized:
                log.info("clock_synchronized", max_error_ms=state.max_error_ms)
            else:
                log.warning("clock_not_synchronized", detail=state.text,
                            holds_dialing=self.require_sync)
        for dialer in dialers(self.app):
            dialer.holds.set(HOLD, HOLD_TEXT if self.holding else None)
        return state

    async def run(self) -> None:
        while True:
            await self.app.clock.sleep(self.interval_s)
            self.check()

    def as_dict(self) -> dict:
        s = self.state
        return {"synchronized": bool(s and s.synchronized), "holding": self.holding,
                "required": self.require_sync, "text": s.text if s else "not checked yet",
                "max_error_ms": s.max_error_ms if s else None, "checked_at": self.checked_at}


def dialers(app) -> list:
    """What places calls: the campaign runner (every campaign's dialer goes through it), else
    a lone dialer."""
    runner = getattr(app, "runner", None)
    if runner is not None:
        return [runner]
    one = getattr(app, "dialer", None)
    return [one] if one is not None else []


def required(cfg, simulate: bool) -> bool:
    """Whether an unsynchronised clock holds dialing: as configured; by default on real
    hardware only (a demo on a laptop is not a shop's box)."""
    return (not simulate) if cfg.require_clock_sync is None else bool(cfg.require_clock_sync)


def hold_before_boot(cfg, simulate: bool) -> dict[str, str]:
    """Read the clock before the dialers exist, so that not one call goes out unchecked."""
    if required(cfg, simulate) and not READER().synchronized:
        return {HOLD: HOLD_TEXT}
    return {}


async def start(app, runtime, report) -> None:
    """Runtime part: check at boot, then periodically under the supervisor."""
    cfg = runtime.config
    watch = ClockWatch(app, require_sync=required(cfg, app.settings.simulate),
                       interval_s=cfg.clock_check_interval_s)
    runtime.extras["clock"] = watch
    state = watch.check()
    if watch.holding:
        detail = Msg("{state}; automatic dialing held until it is", state=state.text)
    elif not state.synchronized:
        detail = Msg("{state}; not required (clock.require_sync is off)", state=state.text)
    else:
        detail = state.text
    report.add(N_("clock"), state.synchronized or not watch.require_sync, detail)
    runtime.supervisor.run(N_("clock check"), watch.run)
