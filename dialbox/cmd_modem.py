"""``dialbox modem``: a technician's tool on one module, with the appliance's own driver."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from controller.phones import dialable
from firmware import profiles
from firmware.clock import Clock
from firmware.errors import UserError
from firmware.gsm.driver import GsmModule
from firmware.gsm.engine import ATError, ATTimeout, LinkLost
from firmware.lineapi import CallProgress, CallReleased, CallStage, LineStatus
from firmware.linemanager import LineManager


def add_parser(sub) -> None:
    p = sub.add_parser("modem", help="probe a GSM module, place a test call, send a test SMS",
                       description="Talk to one GSM module with the appliance's driver. DEVICE is "
                                   "a serial device or socket://HOST:PORT (ser2net, gateways).")
    p.add_argument("--profile", default="sim800", metavar="FILE",
                   help="hardware profile for the dialect, baud rate, init (default sim800)")
    p.add_argument("--port", required=True, metavar="DEVICE")
    p.add_argument("--baud", type=int, help="override the profile's baud rate")
    msub = p.add_subparsers(dest="modem_command", metavar="ACTION")
    msub.required = True
    pr = msub.add_parser("probe", help="print JSON of what the module reports")
    pr.set_defaults(func=probe)
    c = msub.add_parser("call", help="place one call and print its outcome as JSON")
    c.add_argument("number")
    c.add_argument("--timeout", type=float, default=40.0, metavar="S",
                   help="ring timeout in seconds (default 40)")
    c.add_argument("--hold", type=float, default=10.0, metavar="S",
                   help="hang up S seconds after an answer (default 10)")
    c.set_defaults(func=call)
    s = msub.add_parser("sms", help="send one SMS and print the parts and message references")
    s.add_argument("number")
    s.add_argument("text")
    s.set_defaults(func=sms)


def _module(args: argparse.Namespace) -> GsmModule:
    prof = profiles.load(args.profile)
    if prof.driver != "gsm":
        raise UserError(f"{prof.source}: not a GSM profile (driver {prof.driver})")
    baud = args.baud or (prof.modules[0].baud if prof.modules else 115200)
    prof.bridge_delay_s = 0.0
    return GsmModule("modem", args.port, prof, Clock(), baud=baud)


def _print(data: dict) -> int:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


def probe(args: argparse.Namespace) -> int:
    mod = _module(args)

    async def run() -> dict:
        try:
            return await asyncio.wait_for(mod.probe(), 60)
        except asyncio.TimeoutError:
            raise UserError(f"{args.port}: the module did not finish answering in 60 s") from None
        except (ATTimeout, ATError, LinkLost) as exc:
            raise UserError(f"{args.port}: {exc}") from None
        except Exception as exc:
            if type(exc).__name__ == "_Trouble":
                return dict(mod.info, problem=str(exc))
            raise

    info = asyncio.run(run())
    keys = ("manufacturer", "model", "firmware", "imei", "imsi", "iccid", "sim", "registration",
            "operator", "signal_dbm", "rssi", "problem")
    return _print({k: info.get(k) for k in keys if k in info or k != "problem"})


async def _with_line(args: argparse.Namespace, ring_timeout_s: float, work) -> dict:
    mod = _module(args)
    mgr = LineManager([mod], Clock(), ring_timeout_s=ring_timeout_s, bridge_timeout_s=5.0)
    status: asyncio.Queue = asyncio.Queue()
    mgr.subscribe(status.put_nowait)
    await mgr.start()
    try:
        while True:
            try:
                ev = await asyncio.wait_for(status.get(), 40)
            except asyncio.TimeoutError:
                raise UserError(f"{args.port}: the module did not come into service in 40 s "
                                f"({mod.reason})") from None
            if isinstance(ev, LineStatus):
                if ev.in_service:
                    break
                if mod._failures >= 2:
                    raise UserError(f"{args.port}: out of service: {ev.reason}")
        return await work(mgr, status)
    finally:
        await mgr.stop()


def call(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise UserError(f"--timeout must be positive, got {args.timeout}")
    try:
        args.number = dialable(args.number)
    except ValueError as exc:
        raise UserError(str(exc)) from None

    async def work(mgr: LineManager, events: asyncio.Queue) -> dict:
        await mgr.dial("modem", args.number, call_id="cli-call")
        hangup_task = None
        while True:
            ev = await events.get()
            if isinstance(ev, CallProgress) and ev.stage == CallStage.ANSWERED:
                await mgr.bridge(ev.call_id, "technician")

                async def hang_later() -> None:
                    await asyncio.sleep(args.hold)
                    await mgr.hangup("cli-call")
                hangup_task = asyncio.get_running_loop().create_task(hang_later())
            elif isinstance(ev, CallReleased):
                if hangup_task:
                    hangup_task.cancel()
                    await asyncio.gather(hangup_task, return_exceptions=True)
                return {"outcome": ev.outcome.value, "cause": ev.q850, "reason": ev.reason,
                        "ring_s": round(ev.ring_s, 2), "talk_s": round(ev.talk_s, 2)}

    try:
        return _print(asyncio.run(_with_line(args, args.timeout, work)))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def sms(args: argparse.Namespace) -> int:
    try:
        args.number = dialable(args.number)
    except ValueError as exc:
        raise UserError(str(exc)) from None

    async def work(mgr: LineManager, events: asyncio.Queue) -> dict:
        mod = mgr.channels[0].driver
        return await mod.send_sms(0, args.number, args.text, sms_id="cli-sms")  # type: ignore

    return _print(asyncio.run(_with_line(args, 40, work)))
