"""E1 hardware profiles: validation with key paths, and E1Span drivers built from a profile."""
from __future__ import annotations

import difflib
import re
import socket
from typing import Any

from firmware.clock import Clock
from firmware.errors import N_, Msg
from firmware.e1.lapd import LinkTimers
from firmware.e1.span import E1_TIMESLOTS, E1Span, SpanConfig
from firmware.e1.transports import FdFrameTransport, FrameTransport, StreamFrameTransport

TRANSPORTS = ("tcp", "dahdi", "seqpacket", "serial")
SWITCH_TYPES = ("euroisdn_e1",)
SPAN_KEYS = ("name", "transport", "address", "device", "baudrate", "channels", "blocked",
             "switch", "calling_number", "ring_timeout_s", "timers", "audio")
Q931_TIMERS = ("t303", "t305", "t308", "t310", "t313")
Q921_TIMERS = ("t200", "n200", "t203", "k")
Problem = tuple[tuple, str]


def parse_channels(value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    """``"1-15,17-31"`` or a list of numbers/ranges -> timeslots; ValueError says what is wrong."""
    if allow_empty and (value is None or value == [] or value == ""):
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    slots: list[int] = []
    for item in items:
        text = str(item).strip()
        lo, _, hi = text.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(Msg("{text} is not a timeslot or a range like 1-15",
                                 text=repr(text))) from None
        for ts in range(first, last + 1):
            if ts not in E1_TIMESLOTS:
                raise ValueError(Msg("timeslot {ts} is not a B-channel (1-15, 17-31; 16 is "
                                     "the D-channel)", ts=ts))
            if ts in slots:
                raise ValueError(Msg("timeslot {ts} is listed twice", ts=ts))
            slots.append(ts)
    if not slots:
        raise ValueError(N_("no timeslots listed"))
    return tuple(slots)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _unknown(keys, known, path) -> list[Problem]:
    out = []
    for key in keys:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            out.append((path + (key,), Msg("unknown key '{key}'{hint}", key=key, hint=Msg(
                " (did you mean '{match}'?)", match=hint[0]) if hint else "")))
    return out


def check(doc: dict) -> list[Problem]:
    """Every problem of an E1 profile as (path of keys and indexes, message); empty when fine."""
    problems: list[Problem] = []
    if doc.get("driver") != "e1":
        problems.append((("driver",), Msg("driver must be 'e1', got {value}",
                                          value=repr(doc.get("driver")))))
    spans = doc.get("spans")
    if not isinstance(spans, list) or not spans:
        return problems + [(("spans",), N_("spans must be a non-empty list of spans"))]
    names: set[str] = set()
    for i, span in enumerate(spans):
        path = ("spans", i)
        if not isinstance(span, dict):
            problems.append((path, N_("each span must be a mapping")))
            continue
        problems += _unknown(span, SPAN_KEYS, path)
        name = span.get("name")
        if not isinstance(name, str) or not name:
            problems.append((path + ("name",), N_("name is required (e.g. e1-0)")))
        elif name in names:
            problems.append((path + ("name",), Msg("span name '{name}' is used twice",
                                                   name=name)))
        else:
            names.add(name)
        kind = span.get("transport")
        if kind not in TRANSPORTS:
            problems.append((path + ("transport",), Msg(
                "transport must be one of {choices}, got {value}",
                choices=", ".join(TRANSPORTS), value=repr(kind))))
        elif kind == "tcp":
            host, _, port = str(span.get("address", "")).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                problems.append((path + ("address",), N_("tcp needs address: host:port "
                                                         "(e.g. 127.0.0.1:4016)")))
        elif not isinstance(span.get("device"), str) or not span.get("device"):
            problems.append((path + ("device",), Msg(
                "{transport} needs device: a path (/dev/dahdi/..., a socket path, "
                "/dev/serial/by-id/...)", transport=kind)))
        for key in ("channels", "blocked"):
            if key in span:
                try:
                    parse_channels(span[key], allow_empty=key == "blocked")
                except ValueError as exc:
                    problems.append((path + (key,), exc.args[0]))
        if span.get("switch", "euroisdn_e1") not in SWITCH_TYPES:
            problems.append((path + ("switch",), Msg(
                "switch must be one of {choices}, got {value}",
                choices=", ".join(SWITCH_TYPES), value=repr(span.get("switch")))))
        number = span.get("calling_number")
        if number is not None and not (isinstance(number, str)
                                       and re.fullmatch(r"\+?[0-9]{3,20}", number)):
            problems.append((path + ("calling_number",), N_(
                "calling_number must be the span's official number (DDI), in E.164 like "
                "+74951234567")))
        audio = span.get("audio")
        if audio is not None and (not isinstance(audio, str) or "{ts" not in audio):
            problems.append((path + ("audio",), N_(
                "audio must be the B-channels' DAHDI channel files with a timeslot template, "
                "e.g. /dev/dahdi/chan/001/{ts:03d}")))
        if "ring_timeout_s" in span and not _positive(span["ring_timeout_s"]):
            problems.append((path + ("ring_timeout_s",),
                             N_("ring_timeout_s must be a number > 0")))
        if "baudrate" in span and not (isinstance(span["baudrate"], int)
                                       and span["baudrate"] > 0):
            problems.append((path + ("baudrate",), N_("baudrate must be a positive integer")))
        timers = span.get("timers", {})
        if not isinstance(timers, dict):
            problems.append((path + ("timers",), N_("timers must be a mapping")))
            continue
        problems += _unknown(timers, Q931_TIMERS + Q921_TIMERS, path + ("timers",))
        for key, value in timers.items():
            if key in Q931_TIMERS + Q921_TIMERS and not _positive(value):
                problems.append((path + ("timers", key), Msg("{key} must be a number > 0",
                                                             key=key)))
            elif key in ("n200", "k") and not isinstance(value, int):
                problems.append((path + ("timers", key), Msg("{key} must be a whole number",
                                                             key=key)))
        if isinstance(timers.get("k"), int) and timers["k"] > 127:
            problems.append((path + ("timers", "k"), N_("k must be at most 127 (modulo 128)")))
    return problems


def span_config(span: dict) -> SpanConfig:
    """SpanConfig from one checked span mapping."""
    timers = span.get("timers", {})
    link = LinkTimers(**{k: timers[k] for k in Q921_TIMERS if k in timers})
    cfg = SpanConfig(name=span["name"], link=link,
                     timeslots=parse_channels(span.get("channels", "1-15,17-31")),
                     blocked=frozenset(parse_channels(span.get("blocked"), allow_empty=True)),
                     calling_number=span.get("calling_number"))
    for key in Q931_TIMERS:
        if key in timers:
            setattr(cfg, key, float(timers[key]))
    if "ring_timeout_s" in span:
        cfg.ring_timeout_s = float(span["ring_timeout_s"])
    return cfg


def transport_factory(span: dict):
    """An async factory that opens the span's real D-channel transport."""
    kind = span["transport"]

    async def factory() -> FrameTransport:
        if kind == "tcp":
            host, _, port = span["address"].rpartition(":")
            return StreamFrameTransport("tcp", host=host, port=int(port))
        if kind == "serial":
            return StreamFrameTransport("serial", device=span["device"],
                                        baudrate=span.get("baudrate", 115200))
        if kind == "seqpacket":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                sock.connect(span["device"])
            except OSError:
                sock.close()
                raise
            return FdFrameTransport(sock=sock)
        return FdFrameTransport(path=span["device"])

    return factory


def spans_from_profile(doc: dict, *, simulate: bool, clock: Clock | None = None,
                       population=None, sim_transport: str = "tcp", capture=None,
                       seed: int | None = None, audio: bool = False) -> list[E1Span]:
    """E1Span drivers for a checked profile; ``simulate`` puts an NT simulator behind each span.

    A simulated span keeps its simulator as ``span.simulator`` (records, faults); the simulator
    listens on 127.0.0.1 (or sits on a socketpair) and is closed by ``span.stop()``.
    """
    problems = check(doc)
    if problems:
        path, message = problems[0]
        raise ValueError(f"{'.'.join(map(str, path))}: {message}")
    clock = clock or Clock()
    spans = []
    for i, span in enumerate(doc["spans"]):
        cfg = span_config(span)
        if simulate and not cfg.calling_number:  # the simulated operator's DDI for this span
            cfg.calling_number = f"+7495777{i:04d}"
        if not simulate:
            spans.append(E1Span(cfg, transport_factory(span), clock=clock, capture=capture))
            if span.get("audio"):
                spans[-1].bchannel = _dahdi_channel(span["audio"])
            continue
        from firmware.sim.e1_network import NetworkSide
        from firmware.sim.population import Population
        pop = population(i) if callable(population) else population
        sim = NetworkSide(pop or Population(seed=None if seed is None else seed + i),
                          clock=clock, timers=cfg.link, name=f"sim-{cfg.name}",
                          seed=None if seed is None else seed + i, audio=audio)
        spans.append(E1Span(cfg, _sim_factory(sim, sim_transport), clock=clock,
                            capture=capture))
        spans[-1].simulator = sim
        spans[-1].closers.append(sim.close)
        if audio:
            spans[-1].bchannel = sim.bchannel
    return spans


def _dahdi_channel(template: str):
    """Opens a B-channel's DAHDI channel file (A-law, 160-byte blocks) by its timeslot."""
    import os

    def open_channel(ts: int) -> int:
        # O_NOCTTY: a channel file that is a tty (a pty standing in for one) never becomes the
        # controlling terminal of a box started in a session of its own.
        return os.open(template.format(ts=ts), os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
    return open_channel


def _sim_factory(sim, kind: str):
    async def factory() -> FrameTransport:
        if kind == "tcp":
            if sim._server is None:
                sim.port = await sim.serve_tcp("127.0.0.1", 0)
            return StreamFrameTransport("tcp", host="127.0.0.1", port=sim.port)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        await sim.attach(FdFrameTransport(sock=theirs))
        return FdFrameTransport(sock=ours)

    return factory
