"""``dialbox e1 decode HEX`` and ``dialbox e1 capture --calls N --pcap FILE``."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections import Counter

from firmware.errors import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("e1", help="E1/ISDN PRI tools: decode frames, capture calls")
    sub = p.add_subparsers(dest="e1_command", metavar="E1_COMMAND")
    sub.required = True
    d = sub.add_parser("decode", help="decode one LAPD frame (hex) and the Q.931 message in it")
    d.add_argument("hex", nargs="+", help="frame bytes in hex; spaces and colons are ignored")
    d.set_defaults(func=decode_command)
    c = sub.add_parser("capture", help="run calls over a simulated span and write a pcap")
    c.add_argument("--calls", type=int, default=10, help="number of calls (default 10)")
    c.add_argument("--pcap", required=True, help="pcap file to write (link type 203, LAPD)")
    c.add_argument("--spans", type=int, default=1, help="simulated spans (default 1)")
    c.add_argument("--scale", type=float, default=200.0,
                   help="simulated seconds per real second (default 200)")
    c.add_argument("--seed", type=int, default=1, help="seed of the simulated debtors")
    c.add_argument("--transport", choices=("tcp", "socketpair"), default="tcp",
                   help="how the simulated network side is reached (default tcp on 127.0.0.1)")
    c.add_argument("--linktype", type=int, choices=(203, 177), default=203,
                   help="pcap link type: 203 LAPD (default) or 177 LAPD with direction header")
    c.set_defaults(func=capture_command)


def _ie_dict(ie) -> dict:
    out = {"ie": type(ie).__name__}
    for f in dataclasses.fields(ie):
        value = getattr(ie, f.name)
        out[f.name] = value.hex() if isinstance(value, bytes) else value
    return out


def describe(raw: bytes) -> dict:
    """JSON-ready description of one LAPD frame and the Q.931 message it carries."""
    from firmware.e1.lapd import decode_frame
    from firmware.e1.q931 import MessageType, decode_message
    from firmware.lineapi import cause_name

    frame = decode_frame(raw)
    lapd = {"kind": frame.kind, "sapi": frame.sapi, "tei": frame.tei, "cr": frame.cr,
            "pf": frame.pf}
    if frame.kind == "I":
        lapd.update(ns=frame.ns, nr=frame.nr)
    elif frame.kind in ("RR", "RNR", "REJ"):
        lapd["nr"] = frame.nr
    out: dict = {"lapd": lapd}
    if frame.kind in ("I", "UI") and frame.info:
        msg = decode_message(frame.info, base=len(raw) - len(frame.info))
        ies = []
        for ie in msg.ies:
            d = _ie_dict(ie)
            if d["ie"] == "Cause":
                d["name"] = cause_name(ie.value)
            ies.append(d)
        out["q931"] = {
            "message_type": msg.name,
            "message_type_code": int(msg.type),
            "call_reference": msg.cref,
            "call_reference_flag": int(msg.flag),
            "known_message": isinstance(msg.type, MessageType),
            "information_elements": ies,
            "unknown_ies": [{"ident": r.ident, "codeset": r.codeset, "data": r.data.hex(),
                             "offset": r.offset} for r in msg.unknown],
            "invalid_ies": [{"ident": r.ident, "reason": r.reason, "data": r.data.hex(),
                             "offset": r.offset} for r in msg.invalid],
        }
    return out


def decode_command(args) -> int:
    from firmware.e1.q931 import DecodeError

    text = "".join(args.hex).replace(":", "").replace(" ", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise UserError(f"e1 decode: {text!r} is not hex; give the frame as hex bytes, "
                        "e.g. 00 01 00 00 08 02 00 01 05") from None
    try:
        result = describe(raw)
    except DecodeError as exc:
        raise UserError(f"e1 decode: malformed at byte offset {exc.offset}: {exc.reason}") from None
    print(json.dumps(result, indent=2))
    return 0


def _quiet_logs() -> bool:
    """Keep stdout for the JSON summary when nobody configured logging (plain CLI use)."""
    import logging

    import structlog
    if structlog.is_configured():
        return False
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        cache_logger_on_first_use=False)
    return True


def capture_command(args) -> int:
    import structlog
    if _quiet_logs():
        try:
            return _capture_command(args)
        finally:
            structlog.reset_defaults()
    return _capture_command(args)


def _capture_command(args) -> int:
    if args.calls < 0 or args.spans < 1 or args.scale <= 0:
        raise UserError("e1 capture: --calls must be >= 0, --spans >= 1 and --scale > 0")
    try:
        out = open(args.pcap, "wb")
    except OSError as exc:
        raise UserError(f"e1 capture: cannot write {args.pcap}: {exc.strerror}") from None
    with out:
        summary = asyncio.run(_capture(args, out))
    print(json.dumps(summary, indent=2))
    return 0


async def _capture(args, out) -> dict:
    from firmware.clock import Clock
    from firmware.e1.pcap import PcapWriter
    from firmware.e1.profile import spans_from_profile
    from firmware.sim.e1_network import drive_calls
    from firmware.sim.population import Population

    clock = Clock(args.scale)
    pcap = PcapWriter(out, we_network=False, linktype=args.linktype)
    doc = {"driver": "e1", "spans": [
        {"name": f"e1-{i}", "transport": "tcp", "address": "127.0.0.1:1"}
        for i in range(args.spans)]}
    spans = spans_from_profile(
        doc, simulate=True, clock=clock, sim_transport=args.transport,
        capture=lambda raw, outgoing: pcap.write(raw, outgoing=outgoing),
        population=lambda i: Population(seed=args.seed + i, ring_mean_s=6, talk_mean_s=20,
                                        talk_sd_s=10))
    try:
        results = await drive_calls(spans, args.calls, clock=clock,
                                    timeout_s=120.0 + 60.0 * args.calls)
    finally:
        for span in spans:
            await span.stop()
    pcap.flush()
    fates = Counter(r.fate for s in spans for r in s.simulator.records)
    return {"calls": len(results), "frames": pcap.count, "pcap": args.pcap,
            "outcomes": dict(Counter(r.outcome for r in results)), "fates": dict(fates)}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
