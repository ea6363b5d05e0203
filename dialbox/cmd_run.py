"""``dialbox run``: the appliance and its web admin in one process."""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
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
                   help="where the web admin listens (default 127.0.0.1:8080); on a LAN "
                        "address plain HTTP redirects to HTTPS")
    p.add_argument("--https", metavar="HOST:PORT",
                   help="serve HTTPS here (default: on the --http host, port 8443, when that "
                        "host is not loopback); the browser needs it to give the desk a headset")
    p.add_argument("--tls-cert", type=Path, metavar="PEM",
                   help="the shop's own server certificate (chain) instead of the box's CA")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="the key of --tls-cert")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                   help="simulated seconds per real second for debtors and operators (default 1)")
    p.add_argument("--no-demo", dest="demo", action="store_false",
                   help="with --simulate on a fresh data directory, do not make the demo "
                        "campaign (by default it is made, loaded and started)")
    p.add_argument("--calllist", type=Path, metavar="CSV",
                   help="call list for the demo campaign (default: bundled 200 debtors)")
    p.add_argument("--compliance", default="ru-230fz", metavar="PROFILE",
                   help="compliance profile of the demo campaign when it is made: ru-230fz "
                        "(default), us-regf, or none (only for demos outside legal hours)")
    p.add_argument("--mode", default="progressive", choices=("preview", "progressive", "predictive"),
                   help="dialing mode of the demo campaign when it is made (default progressive)")
    p.add_argument("--abandon-message", type=Path, metavar="FILE",
                   help="the demo campaign's abandon message (WAV, MP3, OGG): what a debtor hears "
                        "when no operator is free within 2 s (us-regf predictive needs one)")
    p.add_argument("--reserve-inbound", type=int, default=0, metavar="N",
                   help="blended mode: keep N operators free for debtors calling back")
    p.add_argument("--seed", type=int, help="random seed of the simulation")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(func=run)


HTTPS_PORT = 8443


def parse_http(text: str, option: str = "--http") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def https_bind(http: tuple[str, int], https: str | None) -> tuple[str, int] | None:
    """Where HTTPS is served: as asked, or by default beside a non-loopback HTTP address."""
    if https is not None:
        return parse_http(https, "--https")
    host = http[0]
    if host == "localhost" or _loopback(host):
        return None
    return host, HTTPS_PORT


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    host, port = parse_http(args.http)
    secure_at = https_bind((host, port), args.https)
    logsetup.configure(args.log_level)
    settings = Settings(simulate=args.simulate, profiles=tuple(args.profile), operators=args.operators,
                        data=args.data, time_scale=args.time_scale, calllist=args.calllist,
                        seed=args.seed, compliance=args.compliance, mode=args.mode,
                        demo=args.demo, reserve_inbound=args.reserve_inbound,
                        abandon_message=args.abandon_message)
    if settings.time_scale <= 0:
        raise UserError(f"--time-scale must be positive, got {settings.time_scale}")
    appliance = Appliance(settings)
    tls_files = None
    if secure_at is None and args.tls_cert is not None:
        raise UserError("--tls-cert needs --https HOST:PORT (or a LAN address in --http)")
    if secure_at is not None:
        from dialbox import tls
        from firmware.clock import Clock
        names, addresses = tls.local_names()
        if tls.is_ip(secure_at[0]) and not ipaddress.ip_address(secure_at[0]).is_unspecified:
            addresses = sorted({*addresses, secure_at[0]})
        tls_files = tls.ensure(settings.data, now=Clock().wall(), names=names,
                               addresses=addresses, shop_cert=args.tls_cert,
                               shop_key=args.tls_key)
    urls = f"http://{host}:{port}/" + (
        f" and https://{secure_at[0]}:{secure_at[1]}/" if secure_at else "")
    home = f"https://{secure_at[0]}:{secure_at[1]}/" if secure_at else f"http://{host}:{port}/"

    async def lifecycle(app: web.Application):
        await appliance.start()
        yield
        await appliance.stop()

    def listening() -> None:
        print(f"dialbox is running: web admin at {urls}  (Ctrl-C stops it)", flush=True)
        if appliance.initial_password:
            from dialbox.banner import first_start
            print(first_start(home, appliance.initial_password,
                              str(settings.data / "initial-admin-password")), flush=True)
        print(appliance.campaigns_line(), flush=True)

    async def factory() -> web.Application:
        from web_admin.app import make_app
        from web_admin.https import Https
        app = make_app(appliance, tls=Https(
            port=secure_at[1] if secure_at else None,
            ca=tls_files.ca if tls_files else None))
        app.cleanup_ctx.append(lifecycle)
        return app

    sites = [(host, port, None)]
    if secure_at is not None:
        sites.append((*secure_at, tls_files.server_context()))
    try:
        asyncio.run(_serve(factory, sites, listening))
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    print("dialbox stopped", file=sys.stderr)
    return 0


async def _serve(factory, sites: list, listening) -> None:
    """The web admin on every site (plain HTTP, HTTPS) until a signal stops it."""
    runner = web.AppRunner(await factory(), handle_signals=True, access_log=None)
    await runner.setup()
    try:
        for host, port, ctx in sites:
            try:
                await web.TCPSite(runner, host, port, ssl_context=ctx).start()
            except OSError as exc:
                raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        listening()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
