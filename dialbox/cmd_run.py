"""``dialbox run``: the appliance and its web admin in one process."""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from pathlib import Path

from dialbox import config, logsetup
from dialbox.appliance import Settings
from firmware.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the appliance and its web admin",
                       description="Run the appliance: lines, dialer, web admin. With --simulate "
                                   "the hardware of the profile is simulated (no modems needed).")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="appliance config (YAML; default $DIALBOX_CONFIG); flags override it")
    p.add_argument("--simulate", nargs="?", const="all", default=None, choices=("all", "floor"),
                   help="simulate the profile's hardware (modems on pseudo-terminals), the "
                        "operators and the demo; 'floor': only the operators and the demo, the "
                        "profile's ports are opened as they are (real modems, or simulators "
                        "outside the box)")
    p.add_argument("--profile", metavar="FILE", action="append", default=None,
                   help="hardware profile: a YAML file or a bundled name; repeat it for each "
                        "device of the box (default with --simulate: sim-gsm-4 and e1-1span)")
    p.add_argument("--console", metavar="DEVICE",
                   help="field-service console on this serial port (any tty, a pty included)")
    p.add_argument("--operators", type=int, default=3, metavar="N",
                   help="simulated operators on the floor with --simulate (default 3; 0: only "
                        "people logged in at the agent desk take calls)")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="data directory: database, reports (default ./dialbox-data)")
    p.add_argument("--http", metavar="HOST:PORT", action="append",
                   help="where the web admin listens (default 127.0.0.1:8080; repeat it for "
                        "several addresses)")
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
    parsed = config.parse_listen(text)
    if parsed is None:
        raise UserError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return parsed


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


def merged_config(args: argparse.Namespace) -> config.ApplianceConfig:
    """The config file (if any) with the flags given on the command line on top."""
    path = config.find(args.config)
    cfg = config.load(path) if path else config.ApplianceConfig()
    if args.data is not None:
        cfg.data = args.data
    if args.http:
        for addr in args.http:
            parse_http(addr)
        cfg.listen = list(args.http)
    if args.profile:
        cfg.profiles, cfg.disabled_profiles = list(args.profile), []
    if args.simulate:
        cfg.simulate = True
    if args.console:
        cfg.console.device = args.console
    if args.https:
        cfg.https_listen = args.https
    if args.tls_cert is not None or args.tls_key is not None:
        cfg.https_cert, cfg.https_key = args.tls_cert, args.tls_key
    return cfg


def web_tls(cfg: config.ApplianceConfig):
    """HTTPS for the web admin: (Https for make_app, (host, port, ssl context) or None)."""
    from web_admin.https import Https
    secure_at = https_bind(parse_http(cfg.listen[0]), cfg.https_listen)
    if secure_at is None:
        if cfg.https_cert is not None:
            raise UserError("--tls-cert (https: cert) needs --https HOST:PORT (https: listen), "
                            "or a LAN address in --http (listen)")
        return Https(), None
    from dialbox import tls
    from firmware.clock import Clock
    names, addresses = tls.local_names()
    if tls.is_ip(secure_at[0]) and not ipaddress.ip_address(secure_at[0]).is_unspecified:
        addresses = sorted({*addresses, secure_at[0]})
    files = tls.ensure(cfg.data, now=Clock().wall(), names=names, addresses=addresses,
                       shop_cert=cfg.https_cert, shop_key=cfg.https_key)
    return Https(port=secure_at[1], ca=files.ca), (*secure_at, files.server_context())


def run(args: argparse.Namespace) -> int:
    cfg = merged_config(args)
    logsetup.configure(args.log_level)
    settings = Settings(simulate=cfg.simulate, profiles=tuple(cfg.profiles),
                        operators=args.operators, data=cfg.data, time_scale=args.time_scale,
                        calllist=args.calllist, seed=args.seed, compliance=args.compliance,
                        mode=args.mode, demo=args.demo, reserve_inbound=args.reserve_inbound,
                        abandon_message=args.abandon_message,
                        simulate_hardware=args.simulate != "floor",
                        recording_retention_days=cfg.recordings_days,
                        disk_warn_free_mb=cfg.disk_warn_free_mb,
                        disk_stop_free_mb=cfg.disk_stop_free_mb)
    if settings.time_scale <= 0:
        raise UserError(f"--time-scale must be positive, got {settings.time_scale}")
    from dialbox.service import serve
    code = asyncio.run(serve(cfg, settings, tls=web_tls(cfg)))
    print("dialbox stopped", file=sys.stderr)
    return code
