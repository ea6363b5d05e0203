"""Test tooling: Debian's libpri (a real ISDN stack) as the NETWORK side, loaded with ctypes.

libpri talks to a file descriptor with DAHDI semantics (one frame per read/write, 2 FCS bytes
appended), which one end of ``socketpair(AF_UNIX, SOCK_SEQPACKET)`` provides. It runs inside the
test's asyncio loop: the descriptor is watched with ``add_reader`` and libpri's timers with
``pri_schedule_next``/``pri_schedule_run``.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from dataclasses import dataclass, field

PRI_NETWORK = 1
PRI_SWITCH_EUROISDN_E1 = 5
PRI_TRANS_CAP_SPEECH = 0
PRI_LAYER_1_ALAW = 0x23
PRI_UNKNOWN = 0
PRES_ALLOWED_USER_NUMBER_NOT_SCREENED = 0x00
PRI_PROG_INBAND_AVAILABLE = 1 << 3  # libpri's progress bit for "in-band information"

EV_DCHAN_UP, EV_DCHAN_DOWN, EV_RESTART, EV_RING, EV_HANGUP = 1, 2, 3, 5, 6
EV_RINGING, EV_ANSWER, EV_HANGUP_ACK, EV_RESTART_ACK = 7, 8, 9, 10
EV_PROCEEDING, EV_HANGUP_REQ, EV_CONNECT_ACK = 13, 15, 27


def find_libpri() -> str | None:
    """Path or soname of libpri, or None when it is not installed."""
    return ctypes.util.find_library("pri")


class _Ring(ctypes.Structure):
    _fields_ = [("e", ctypes.c_int), ("channel", ctypes.c_int), ("callingpres", ctypes.c_int),
                ("callingplanani", ctypes.c_int), ("callingplan", ctypes.c_int),
                ("callingani", ctypes.c_char * 256), ("callingnum", ctypes.c_char * 256),
                ("callingname", ctypes.c_char * 256), ("calledplan", ctypes.c_int),
                ("ani2", ctypes.c_int), ("callednum", ctypes.c_char * 256),
                ("redirectingnum", ctypes.c_char * 256), ("redirectingname", ctypes.c_char * 256),
                ("redirectingreason", ctypes.c_int), ("callingplanrdnis", ctypes.c_int),
                ("useruserinfo", ctypes.c_char * 260), ("flexible", ctypes.c_int),
                ("cref", ctypes.c_int), ("ctype", ctypes.c_int), ("layer1", ctypes.c_int),
                ("complete", ctypes.c_int), ("call", ctypes.c_void_p)]


class _Hangup(ctypes.Structure):
    _fields_ = [("e", ctypes.c_int), ("channel", ctypes.c_int), ("cause", ctypes.c_int),
                ("cref", ctypes.c_int), ("call", ctypes.c_void_p)]


class _Answer(ctypes.Structure):  # also ringing
    _fields_ = [("e", ctypes.c_int), ("channel", ctypes.c_int), ("cref", ctypes.c_int),
                ("progress", ctypes.c_int), ("progressmask", ctypes.c_int),
                ("call", ctypes.c_void_p)]


class _Restart(ctypes.Structure):
    _fields_ = [("e", ctypes.c_int), ("channel", ctypes.c_int)]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


@dataclass
class PeerEvent:
    kind: int
    channel: int = 0
    cause: int = 0
    cref: int = 0
    calling: str = ""
    called: str = ""
    call: int | None = None


@dataclass
class LibpriNetwork:
    """libpri in the network role on one end of a SOCK_SEQPACKET socketpair."""

    fd: int
    events: list[PeerEvent] = field(default_factory=list)
    # called number -> ("answer", ring_s, talk_s or None) | ("reject", cause)
    plan: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = find_libpri()
        if name is None:
            raise OSError("libpri not installed (apt-get install -y libpri1.4)")
        lib = self.lib = ctypes.CDLL(name)
        lib.pri_new.restype = ctypes.c_void_p
        lib.pri_new.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.pri_check_event.restype = ctypes.c_void_p
        lib.pri_check_event.argtypes = [ctypes.c_void_p]
        lib.pri_schedule_next.restype = ctypes.POINTER(_Timeval)
        lib.pri_schedule_next.argtypes = [ctypes.c_void_p]
        lib.pri_schedule_run.restype = ctypes.c_void_p
        lib.pri_schedule_run.argtypes = [ctypes.c_void_p]
        for fn in ("pri_answer", "pri_acknowledge", "pri_proceeding"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                         ctypes.c_int]
        lib.pri_hangup.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        lib.pri_new_call.restype = ctypes.c_void_p
        lib.pri_new_call.argtypes = [ctypes.c_void_p]
        lib.pri_call.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_int]
        lib.pri_restart.argtypes = [ctypes.c_void_p]
        lib.pri_reset.argtypes = [ctypes.c_void_p, ctypes.c_int]
        # libpri prints protocol chatter through these hooks; keep the callbacks referenced.
        proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
        self.messages: list[str] = []
        self._hook = proto(lambda pri, text: self.messages.append(text.decode(errors="replace")))
        lib.pri_set_message(self._hook)
        lib.pri_set_error(self._hook)
        self.pri = lib.pri_new(self.fd, PRI_NETWORK, PRI_SWITCH_EUROISDN_E1)
        if not self.pri:
            raise OSError("pri_new failed")
        self.up = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._later: set[asyncio.TimerHandle] = set()

    def start(self) -> None:
        os.set_blocking(self.fd, False)
        asyncio.get_running_loop().add_reader(self.fd, self._readable)
        self._reschedule()

    def stop(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.fd)
        for h in list(self._later) + ([self._timer] if self._timer else []):
            h.cancel()

    # -- commands -------------------------------------------------------------------------
    def originate(self, channel: int, caller: str, called: str) -> int:
        call = self.lib.pri_new_call(self.pri)
        rc = self.lib.pri_call(self.pri, call, PRI_TRANS_CAP_SPEECH, channel, 1, 0,
                               caller.encode(), PRI_UNKNOWN, None,
                               PRES_ALLOWED_USER_NUMBER_NOT_SCREENED, called.encode(),
                               PRI_UNKNOWN, PRI_LAYER_1_ALAW)
        if rc:
            raise OSError(f"pri_call failed ({rc})")
        self._reschedule()
        return call

    def hangup(self, call: int, cause: int) -> None:
        self.lib.pri_hangup(self.pri, call, cause)
        self._reschedule()

    # -- loop -----------------------------------------------------------------------------
    def _readable(self) -> None:
        ev = self.lib.pri_check_event(self.pri)
        if ev:
            self._event(ev)
        self._reschedule()

    def _reschedule(self) -> None:
        if self._timer:
            self._timer.cancel()
            self._timer = None
        tv = self.lib.pri_schedule_next(self.pri)
        if not tv:
            return
        loop = asyncio.get_running_loop()
        import time
        delay = max(0.0, tv.contents.tv_sec + tv.contents.tv_usec / 1e6 - time.time())
        self._timer = loop.call_later(delay, self._run_timers)

    def _run_timers(self) -> None:
        self._timer = None
        ev = self.lib.pri_schedule_run(self.pri)
        if ev:
            self._event(ev)
        self._reschedule()

    def _after(self, seconds: float, fn, *args) -> None:
        def fire() -> None:
            self._later.discard(handle)
            fn(*args)
            self._reschedule()
        handle = asyncio.get_running_loop().call_later(seconds, fire)
        self._later.add(handle)

    def _event(self, ptr: int) -> None:
        kind = ctypes.cast(ptr, ctypes.POINTER(ctypes.c_int)).contents.value
        if kind == EV_RING:
            r = ctypes.cast(ptr, ctypes.POINTER(_Ring)).contents
            ev = PeerEvent(kind, r.channel, 0, r.cref, r.callingnum.decode(),
                           r.callednum.decode(), r.call)
            self.events.append(ev)
            self._ring(ev)
        elif kind in (EV_HANGUP, EV_HANGUP_REQ, EV_HANGUP_ACK):
            h = ctypes.cast(ptr, ctypes.POINTER(_Hangup)).contents
            self.events.append(PeerEvent(kind, h.channel, h.cause, h.cref, call=h.call))
            # As chan_dahdi does: DISCONNECT from the user (HANGUP_REQ) is answered with
            # pri_hangup (RELEASE); after RELEASE (HANGUP) pri_hangup sends RELEASE COMPLETE and
            # frees the call; HANGUP_ACK means libpri already freed it.
            if kind in (EV_HANGUP_REQ, EV_HANGUP):
                self.lib.pri_hangup(self.pri, h.call, h.cause if h.cause > 0 else 16)
        elif kind in (EV_RINGING, EV_ANSWER, EV_PROCEEDING, EV_CONNECT_ACK):
            a = ctypes.cast(ptr, ctypes.POINTER(_Answer)).contents
            self.events.append(PeerEvent(kind, a.channel, 0, a.cref, call=a.call))
        elif kind in (EV_RESTART, EV_RESTART_ACK):
            r = ctypes.cast(ptr, ctypes.POINTER(_Restart)).contents
            self.events.append(PeerEvent(kind, r.channel))
        else:
            self.events.append(PeerEvent(kind))
            if kind == EV_DCHAN_UP:
                self.up.set()
            elif kind == EV_DCHAN_DOWN:
                self.up.clear()

    def _ring(self, ev: PeerEvent) -> None:
        action = self.plan.get(ev.called, ("answer", 0.05, None))
        if action[0] == "reject":
            # libpri only signals for a call it has responded to: CALL PROCEEDING, DISCONNECT.
            self.lib.pri_proceeding(self.pri, ev.call, ev.channel, 0)
            self.lib.pri_hangup(self.pri, ev.call, action[1])
            return
        _, ring_s, talk_s = action
        self.lib.pri_proceeding(self.pri, ev.call, ev.channel, 0)
        self.lib.pri_acknowledge(self.pri, ev.call, ev.channel, 1)
        self._after(ring_s, self.lib.pri_answer, self.pri, ev.call, ev.channel, 0)
        if talk_s is not None:
            self._after(ring_s + talk_s, self.lib.pri_hangup, self.pri, ev.call, 16)

    def kinds(self) -> list[int]:
        return [e.kind for e in self.events]
