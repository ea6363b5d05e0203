"""``dialbox run``: the appliance and its web admin in one process."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiohttp import web

from dialbox import logsetup
from dialbox.appliance import Appliance, Settings
from firmware.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the appliance and its web admin",
                       description="Run the appliance: lines, dialer, web admin. With --simulate "
                                   "the hardware of the profile is simulated (no modems needed).")
    p.add_argument("--simulate", action="store_true",
                   help="simulate the profile's hardware (modems on pseudo-terminals)")
    p.add_argument("--profile", metavar="FILE", action="append", default=[],
                   help="hardware profile: a YAML file or a bundled name; repeat it for each "
                        "device of the box (default with --simulate: sim-gsm-4 and e1-1span)")
    p.add_argument("--operators", type=int, default=3, metavar="N",
                   help="simulated operators on the floor with --simulate (default 3; 0: only "
                        "people logged in at the agent desk take calls)")
    p.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR",
                   help="data directory: database, reports (default ./dialbox-data)")
    p.add_argument("--http", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="where the web admin listens (default 127.0.0.1:8080)")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                   help="simulated seconds per real second for debtors and operators (default 1)")
    p.add_argument("--calllist", type=Path, metavar="CSV",
                   help="call list for the demo campaign (default: bundled 200 debtors)")
    p.add_argument("--compliance", default="ru-230fz", metavar="PROFILE",
                   help="compliance profile of the demo campaign: ru-230fz (default), us-regf, "
                        "or none (only for demos outside legal hours)")
    p.add_argument("--mode", default="progressive", choices=("preview", "progressive", "predictive"),
                   help="dialing mode of the demo campaign (default progressive)")
    p.add_argument("--abandon-message", type=Path, metavar="FILE",
                   help="the demo campaign's abandon message (WAV, MP3, OGG): what a debtor hears "
                        "when no operator is free within 2 s (us-regf predictive needs one)")
    p.add_argument("--reserve-inbound", type=int, default=0, metavar="N",
                   help="blended mode: keep N operators free for debtors calling back")
    p.add_argument("--seed", type=int, help="random seed of the simulation")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(func=run)


def parse_http(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--http {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    host, port = parse_http(args.http)
    logsetup.configure(args.log_level)
    settings = Settings(simulate=args.simulate, profiles=tuple(args.profile), operators=args.operators,
                        data=args.data, time_scale=args.time_scale, calllist=args.calllist,
                        seed=args.seed, compliance=args.compliance, mode=args.mode,
                        reserve_inbound=args.reserve_inbound, abandon_message=args.abandon_message)
    if settings.time_scale <= 0:
        raise UserError(f"--time-scale must be positive, got {settings.time_scale}")
    appliance = Appliance(settings)

    async def lifecycle(app: web.Application):
        await appliance.start()
        print(f"dialbox is running: web admin at http://{host}:{port}/  (Ctrl-C stops it)",
              flush=True)
        if appliance.initial_password:
            from dialbox.banner import first_start
            print(first_start(f"http://{host}:{port}/", appliance.initial_password,
                              str(settings.data / "initial-admin-password")), flush=True)
        yield
        await appliance.stop()

    async def factory() -> web.Application:
        from web_admin.app import make_app
        app = make_app(appliance)
        app.cleanup_ctx.append(lifecycle)
        return app

    try:
        web.run_app(factory(), host=host, port=port, print=None, access_log=None)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print("dialbox stopped", file=sys.stderr)
    return 0
