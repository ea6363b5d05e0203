"""The appliance config (``/etc/dialbox/dialbox.yaml``): checked with ``FILE:LINE`` problems,
overridden by flags, and written back atomically with the previous version kept."""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from firmware.errors import UserError
from firmware.yamlsrc import ConfigError, Problem, Source, suggest

ENV = "DIALBOX_CONFIG"
DEFAULT_LISTEN = "127.0.0.1:8080"
NUM = (int, float)

# key -> expected type; nested mappings have their own table below.
_TOP = {"data": str, "listen": (str, list), "profiles": list, "simulate": bool,
        "console": (str, dict, type(None)), "timezone": str, "clock": dict, "backup": dict,
        "retention": dict, "metrics": dict, "supervisor": dict, "network": dict, "disk": dict,
        "https": dict}
_SECTIONS = {
    "console": {"device": str, "baud": int, "lockout_s": NUM, "max_wrong_pins": int},
    "clock": {"require_sync": bool, "check_interval_s": NUM},
    "backup": {"nightly": bool, "at": str, "keep": int, "dir": str},
    "retention": {"recordings_days": int, "backups_days": int, "log_lines": int},
    "disk": {"warn_free_mb": NUM, "stop_free_mb": NUM},
    "metrics": {"allow": list, "token": (str, type(None))},
    "supervisor": {"line_max_failures": int, "restart_backoff_s": NUM,
                   "restart_backoff_max_s": NUM, "watchdog": bool},
    "network": {"interface": str, "address": str, "gateway": (str, type(None)),
                "dns": list, "apply": bool, "apply_with": str, "networkd_dir": str},
    # HTTPS for the web admin (the desk's headset needs it off loopback): where, and the shop's
    # own certificate instead of the box's CA.
    "https": {"listen": (str, type(None)), "cert": (str, type(None)), "key": (str, type(None))},
}
_PROFILE_KEYS = {"file": str, "enabled": bool}


@dataclass
class ConsoleSettings:
    device: str | None = None
    baud: int = 115200
    lockout_s: float = 300.0
    max_wrong_pins: int = 3


@dataclass
class ApplianceConfig:
    """Everything the appliance takes from its config file (defaults when there is none)."""

    source: str | None = None  # the file, when there is one: changes are written back to it
    data: Path = Path("dialbox-data")
    listen: list[str] = field(default_factory=lambda: [DEFAULT_LISTEN])
    profiles: list[str] = field(default_factory=list)  # enabled ones only, resolved paths/names
    disabled_profiles: list[str] = field(default_factory=list)
    simulate: bool = False
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    timezone: str | None = None
    require_clock_sync: bool | None = None  # None: required on real hardware, not --simulate
    clock_check_interval_s: float = 60.0
    backup_nightly: bool = True
    backup_at: str = "03:00"
    backup_keep: int = 7
    backup_dir: str = "backups"
    recordings_days: int = 3 * 365 + 1  # 3 years (a leap day included): what ru-230fz asks
    disk_warn_free_mb: float = 2048.0  # free space below which the dashboard warns
    disk_stop_free_mb: float = 512.0  # free space below which automatic dialing pauses
    log_lines: int = 1000  # kept in memory for ``show log``
    metrics_allow: list[str] = field(default_factory=list)
    metrics_token: str | None = None
    line_max_failures: int = 5
    restart_backoff_s: float = 1.0
    restart_backoff_max_s: float = 60.0
    watchdog: bool = True
    network: dict = field(default_factory=dict)
    https_listen: str | None = None  # None: beside a non-loopback HTTP address, port 8443
    https_cert: Path | None = None  # the shop's certificate (chain), PEM
    https_key: Path | None = None

    @property
    def backup_path(self) -> Path:
        p = Path(self.backup_dir)
        return p if p.is_absolute() else Path(self.data) / p


def find(path: str | Path | None) -> Path | None:
    """The config file: the one given, else ``$DIALBOX_CONFIG``, else none."""
    if path:
        return Path(path)
    env = os.environ.get(ENV)
    return Path(env) if env else None


def load(path: str | Path) -> ApplianceConfig:
    """Read and check a config file; raise ConfigError listing every problem with its line."""
    src = Source.read(path)
    problems = check(src)
    if problems:
        raise ConfigError(problems)
    return _build(src)


def check(src: Source, *, profiles_too: bool = False) -> list[Problem]:
    """Every problem of a config (empty when valid); with ``profiles_too`` the profiles' own."""
    doc = src.data
    if doc is None:
        return []
    if not isinstance(doc, dict):
        return [src.problem((), "the config must be a mapping of keys (data, listen, profiles, "
                                "...)")]
    problems: list[Problem] = []
    _keys(src, doc, (), _TOP, problems)
    for section, spec in _SECTIONS.items():
        if isinstance(doc.get(section), dict):
            _keys(src, doc[section], (section,), spec, problems)
    listen = doc.get("listen")
    for i, addr in enumerate([listen] if isinstance(listen, str) else listen or []):
        path = ("listen",) if isinstance(listen, str) else ("listen", i)
        if not isinstance(addr, str) or parse_listen(addr) is None:
            problems.append(src.problem(path, f"listen address {addr!r}: expected HOST:PORT, "
                                              "e.g. 127.0.0.1:8080 or [::1]:8080"))
    for i, entry in enumerate(doc.get("profiles") or [] if isinstance(doc.get("profiles"), list)
                              else []):
        _check_profile_entry(src, entry, i, problems, profiles_too)
    if isinstance(doc.get("timezone"), str):
        try:
            ZoneInfo(doc["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(src.problem(("timezone",), f"unknown time zone {doc['timezone']!r}; "
                                                      "use an IANA name such as Europe/Moscow"))
    _check_values(src, doc, problems)
    return problems


def parse_listen(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT`` too) or None."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})", text.strip())
    if not m:
        return None
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return (host, int(port)) if 0 < int(port) < 65536 else None


def resolve_profile(name: str, base: Path | None) -> str:
    """A profile entry: a bundled name stays a name; a relative path is relative to the config."""
    looks_like_file = "/" in name or name.endswith((".yaml", ".yml"))
    if looks_like_file and base is not None and not Path(name).is_absolute():
        return str(base / name)
    return name


def update(path: str | Path, changes: dict[str, Any]) -> Path:
    """Write top-level ``changes`` back into the config file atomically; returns the kept
    previous version. Comments and the order of the other keys stay as the person wrote them."""
    p = Path(path)
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    new = splice(old, changes, str(p))
    problems = check(Source(new, str(p)))
    if problems:  # never write a file the next boot would refuse
        raise ConfigError(problems)
    prev = p.with_name(p.name + ".prev")
    if p.exists():
        write_atomic(prev, old)
    write_atomic(p, new)
    return prev


def splice(text: str, changes: dict[str, Any], filename: str = "<config>") -> str:
    """``text`` with each top-level key of ``changes`` replaced (or appended) as YAML."""
    for key, value in changes.items():
        text = _splice_one(text, key, value, filename)
    return text


def raw(path: str | Path) -> dict:
    """The config file's mapping as written (for changing one section)."""
    data = Source.read(path).data
    return data if isinstance(data, dict) else {}


# --- internals ----------------------------------------------------------------------------------
def write_atomic(path: Path, text: str, *, mode: int = 0o640) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: never half a file.
    A file that exists keeps its permissions; a new one gets ``mode``."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    mode = path.stat().st_mode & 0o777 if path.exists() else mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _splice_one(text: str, key: str, value: Any, filename: str) -> str:
    src = Source(text, filename)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    block = yaml.safe_dump({key: value}, allow_unicode=True, sort_keys=False,
                           default_flow_style=False)
    doc = src.data if isinstance(src.data, dict) else {}
    if key not in doc:
        return "".join(lines) + block
    start = src.lines[(key,)] - 1
    later = [src.lines[(k,)] - 1 for k in doc if src.lines[(k,)] - 1 > start]
    end = min(later) if later else len(lines)
    while end > start + 1 and (not lines[end - 1].strip() or (
            lines[end - 1].startswith("#"))):
        end -= 1  # blank lines and column-0 comments belong to what follows
    lines[start:end] = [block]
    return "".join(lines)


def _keys(src: Source, doc: dict, path: tuple, spec: dict, problems: list[Problem]) -> None:
    for key, value in doc.items():
        if key not in spec:
            problems.append(src.problem(path + (key,), f"unknown key '{key}'{suggest(key, spec)}"))
            continue
        want = spec[key]
        kinds = want if isinstance(want, tuple) else (want,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            names = "/".join("null" if t is type(None) else t.__name__ for t in kinds)
            problems.append(src.problem(path + (key,), f"'{key}' must be {names}, "
                                                       f"got {type(value).__name__} {value!r}"))


def _check_profile_entry(src: Source, entry: Any, i: int, problems: list[Problem],
                         profiles_too: bool) -> None:
    path = ("profiles", i)
    if isinstance(entry, dict):
        _keys(src, entry, path, _PROFILE_KEYS, problems)
        name = entry.get("file")
        if not isinstance(name, str):
            problems.append(src.problem(path, "a profile entry needs 'file': a profile file or "
                                              "a bundled name"))
            return
        if entry.get("enabled", True) is False:
            return
    elif isinstance(entry, str):
        name = entry
    else:
        problems.append(src.problem(path, "a profile entry is a file or a bundled name, or "
                                          "{file: ..., enabled: true|false}"))
        return
    if not profiles_too:
        return
    from firmware import profiles
    try:
        profiles.load(resolve_profile(name, Path(src.filename).parent))
    except ConfigError as exc:
        problems.extend(exc.problems)
    except UserError as exc:
        problems.append(src.problem(path, str(exc)))


def _check_values(src: Source, doc: dict, problems: list[Problem]) -> None:
    backup = doc.get("backup") if isinstance(doc.get("backup"), dict) else {}
    at = backup.get("at")
    if isinstance(at, str) and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", at):
        problems.append(src.problem(("backup", "at"), f"backup time {at!r}: expected HH:MM, "
                                                      "e.g. \"03:00\" (quoted)"))
    positive = [(("backup", "keep"), backup.get("keep"))]
    for section in ("retention", "clock", "supervisor", "disk"):
        sec = doc.get(section) if isinstance(doc.get(section), dict) else {}
        positive += [((section, k), v) for k, v in sec.items() if k not in ("require_sync",
                                                                               "watchdog")]
    con = doc.get("console")
    if isinstance(con, dict):
        positive += [(("console", k), con.get(k)) for k in ("lockout_s", "max_wrong_pins")]
        baud = con.get("baud")
        if isinstance(baud, int) and not isinstance(baud, bool) and baud not in (
                9600, 19200, 38400, 57600, 115200):
            problems.append(src.problem(("console", "baud"), f"baud {baud} is not a standard "
                                                            "rate (the console runs at 115200)"))
        if "device" not in con:
            problems.append(src.problem(("console",), "console needs 'device': a serial port "
                                                      "such as /dev/ttyS0"))
    for path, value in positive:
        if isinstance(value, NUM) and not isinstance(value, bool) and value <= 0:
            problems.append(src.problem(path, f"{path[-1]} must be positive, got {value}"))
    disk = doc.get("disk") if isinstance(doc.get("disk"), dict) else {}
    warn, stop = disk.get("warn_free_mb", 2048.0), disk.get("stop_free_mb", 512.0)
    if isinstance(warn, NUM) and isinstance(stop, NUM) and not stop < warn:
        problems.append(src.problem(("disk",), f"stop_free_mb ({stop}) must be below "
                                               f"warn_free_mb ({warn}): the warning comes first"))
    metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else {}
    for i, net in enumerate(metrics.get("allow") or []
                            if isinstance(metrics.get("allow"), list) else []):
        try:
            ipaddress.ip_network(str(net), strict=False)
        except ValueError:
            problems.append(src.problem(("metrics", "allow", i), f"{net!r} is not an address "
                                                                 "or network (e.g. 10.0.0.0/8)"))
    token = metrics.get("token")
    if isinstance(token, str) and len(token) < 16:
        problems.append(src.problem(("metrics", "token"), "the scrape token must have at least "
                                                          "16 characters"))
    _check_https(src, doc, problems)
    net = doc.get("network") if isinstance(doc.get("network"), dict) else {}
    if isinstance(net.get("address"), str):
        try:
            ipaddress.ip_interface(net["address"])
        except ValueError:
            problems.append(src.problem(("network", "address"), f"{net['address']!r} is not an "
                                        "address with a prefix, e.g. 192.168.1.10/24"))
    if isinstance(net.get("apply_with"), str) and net["apply_with"] not in ("networkd", "ip"):
        problems.append(src.problem(("network", "apply_with"), f"apply_with must be networkd or "
                                    f"ip, got {net['apply_with']!r}"))
    for i, server in enumerate(net.get("dns") if isinstance(net.get("dns"), list) else []):
        try:
            ipaddress.ip_address(str(server))
        except ValueError:
            problems.append(src.problem(("network", "dns", i), f"DNS server {server!r} is not "
                                                               "an address"))
    if isinstance(net.get("gateway"), str):
        try:
            ipaddress.ip_address(net["gateway"])
        except ValueError:
            problems.append(src.problem(("network", "gateway"), f"{net['gateway']!r} is not "
                                                                "an address"))


def _check_https(src: Source, doc: dict, problems: list[Problem]) -> None:
    tls = doc.get("https") if isinstance(doc.get("https"), dict) else {}
    if isinstance(tls.get("listen"), str) and parse_listen(tls["listen"]) is None:
        problems.append(src.problem(("https", "listen"), f"HTTPS address {tls['listen']!r}: "
                                    "expected HOST:PORT, e.g. 192.168.1.10:8443"))
    if bool(tls.get("cert")) != bool(tls.get("key")):
        have, need = ("cert", "key") if tls.get("cert") else ("key", "cert")
        problems.append(src.problem(("https", have), f"'{have}' needs '{need}' beside it: the "
                                    "shop's certificate and its private key go together"))
    base = Path(src.filename).parent
    for key in ("cert", "key"):
        name = tls.get(key)
        if isinstance(name, str) and name and not _relative(name, base).is_file():
            problems.append(src.problem(("https", key), f"{key} file {name!r} not found "
                                        "(a PEM file; a relative path is taken from the "
                                        "config's directory)"))


def _relative(name: str, base: Path) -> Path:
    p = Path(name)
    return p if p.is_absolute() else base / p


def _build(src: Source) -> ApplianceConfig:
    doc = src.data if isinstance(src.data, dict) else {}
    base = Path(src.filename).parent
    cfg = ApplianceConfig(source=src.filename)
    if "data" in doc:
        d = Path(doc["data"])
        cfg.data = d if d.is_absolute() else base / d
    listen = doc.get("listen")
    if listen:
        cfg.listen = [listen] if isinstance(listen, str) else list(listen)
    for entry in doc.get("profiles") or []:
        name = entry if isinstance(entry, str) else entry["file"]
        enabled = True if isinstance(entry, str) else entry.get("enabled", True)
        (cfg.profiles if enabled else cfg.disabled_profiles).append(resolve_profile(name, base))
    cfg.simulate = bool(doc.get("simulate", False))
    con = doc.get("console")
    if isinstance(con, str):
        cfg.console.device = con
    elif isinstance(con, dict):
        cfg.console = ConsoleSettings(device=con.get("device"), baud=con.get("baud", 115200),
                                      lockout_s=float(con.get("lockout_s", 300)),
                                      max_wrong_pins=con.get("max_wrong_pins", 3))
    cfg.timezone = doc.get("timezone")
    clock = doc.get("clock") or {}
    cfg.require_clock_sync = clock.get("require_sync")
    cfg.clock_check_interval_s = float(clock.get("check_interval_s", 60))
    backup = doc.get("backup") or {}
    cfg.backup_nightly = backup.get("nightly", True)
    cfg.backup_at = backup.get("at", "03:00")
    cfg.backup_keep = backup.get("keep", 7)
    cfg.backup_dir = backup.get("dir", "backups")
    ret = doc.get("retention") or {}
    cfg.recordings_days = ret.get("recordings_days", cfg.recordings_days)
    cfg.log_lines = ret.get("log_lines", cfg.log_lines)
    disk = doc.get("disk") or {}
    cfg.disk_warn_free_mb = float(disk.get("warn_free_mb", cfg.disk_warn_free_mb))
    cfg.disk_stop_free_mb = float(disk.get("stop_free_mb", cfg.disk_stop_free_mb))
    metrics = doc.get("metrics") or {}
    cfg.metrics_allow = [str(n) for n in metrics.get("allow") or []]
    cfg.metrics_token = metrics.get("token")
    sup = doc.get("supervisor") or {}
    cfg.line_max_failures = sup.get("line_max_failures", cfg.line_max_failures)
    cfg.restart_backoff_s = float(sup.get("restart_backoff_s", cfg.restart_backoff_s))
    cfg.restart_backoff_max_s = float(sup.get("restart_backoff_max_s",
                                              cfg.restart_backoff_max_s))
    cfg.watchdog = sup.get("watchdog", True)
    cfg.network = dict(doc.get("network") or {})
    tls = doc.get("https") or {}
    cfg.https_listen = tls.get("listen")
    cfg.https_cert = _relative(tls["cert"], base) if tls.get("cert") else None
    cfg.https_key = _relative(tls["key"], base) if tls.get("key") else None
    return cfg


