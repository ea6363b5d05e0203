"""Hardware profiles: YAML that names the driver, ports, dialect, limits; checked with line numbers."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import hw_profiles
from firmware.gsm.dialects import DIALECTS, SERIAL_VOICE, VOICE_METHODS
from firmware.sim.population import Population
from firmware.errors import N_, Msg
from firmware.yamlsrc import ConfigError, Problem, Source, suggest

DEFAULT_PROFILE = "sim-gsm-4"

_GSM_KEYS = {
    "name": str, "description": str, "driver": str, "dialect": str, "modules": list,
    "baud": int, "rtscts": bool, "init": list, "hangup": str, "call_progress": str,
    "sms_mode": str, "reset": str, "reset_hook": str, "limits": dict, "ussd_balance": (str, dict),
    "health_interval_s": (int, float), "command_timeout_s": (int, float),
    "balance_interval_s": (int, float), "max_failures": int,
    "bridge": dict, "simulate": dict, "audio": str,
}
_MODULE_KEYS = {"port": str, "name": str, "baud": int, "sim": dict, "number": str,
                "audio_port": str, "seat": str}
_LIMIT_KEYS = {"max_call_s": (int, float), "calls_per_sim_per_day": int,
               "sms_per_sim_per_day": int, "sms_min_interval_s": (int, float),
               "ring_timeout_s": (int, float)}
_SIM_KEYS = {"population": dict, "bridge_delay_s": (int, float), "operators": int}
# What a value must be, in the words of a problem.
_KINDS = {(str,): Msg("text"), (int,): Msg("a whole number"), (int, float): Msg("a number"),
          (float,): Msg("a number"), (bool,): Msg("true or false"), (list,): Msg("a list"),
          (dict,): Msg("a mapping"), (type(None),): Msg("empty"),
          (str, dict): Msg("a USSD code or a mapping of operators to codes")}
# A USSD request an operator answers with the balance: *100#, #100#, *102*1#.
_USSD_CODE = re.compile(r"[*#][0-9*#]{0,28}[0-9][0-9*#]{0,28}#")
_CHOICES = {
    "driver": ("gsm", "e1"),
    "call_progress": ("clcc", "huawei", "dsci", "final"),
    "sms_mode": ("pdu", "text"),
    "reset": ("cfun", "none", "hook"),
    "audio": VOICE_METHODS,
}


@dataclass
class ModuleSpec:
    name: str
    port: str
    baud: int
    number: str | None = None  # the SIM's official number (E.164); else learnt with AT+CNUM
    audio_port: str | None = None  # the module's audio serial port (USB voice modules)
    seat: str | None = None  # analog-seat modules: the one operator position wired to it


@dataclass
class Profile:
    """A checked hardware profile."""

    name: str
    driver: str
    source: str
    dialect: str = "generic"
    modules: list[ModuleSpec] = field(default_factory=list)
    rtscts: bool = False
    init: tuple[str, ...] = ()
    hangup: str = "ATH"
    call_progress: str = "final"
    sms_mode: str = "pdu"
    reset: str = "cfun"
    reset_hook: str | None = None
    limits: dict = field(default_factory=dict)
    # The balance USSD code: one for every SIM, or per the SIM's operator ({MCC+MNC or the
    # operator's name as AT+COPS gives it: code, "default": code}); see balance_code().
    ussd_balance: str | dict[str, str] | None = None
    health_interval_s: float = 30.0
    balance_interval_s: float = 3600.0
    command_timeout_s: float = 5.0
    max_failures: int = 5  # failed recoveries in a row before the line waits for a person
    bridge_delay_s: float = 0.3
    # How calls' audio reaches the box (firmware.gsm.dialects.VOICE_METHODS): "none" leaves the
    # voice to the hardware (a gateway's own bridge), the bridge confirmed after bridge_delay_s.
    audio: str = "none"
    population: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    @property
    def ring_timeout_s(self) -> float:
        return float(self.limits.get("ring_timeout_s", 40))

    def balance_code(self, imsi: str | None, operator: str | None) -> str | None:
        """The balance USSD for a SIM: by its home network (the MCC+MNC its IMSI starts with,
        3-digit MNC first), else by the operator's name from AT+COPS, else "default"."""
        codes = self.ussd_balance
        if not isinstance(codes, dict):
            return codes or None
        for n in (6, 5):
            if imsi and len(imsi) > n and imsi[:n] in codes:
                return codes[imsi[:n]]
        name = (operator or "").strip().casefold()
        for key, code in codes.items():
            if name and key.casefold() == name:
                return code
        return codes.get("default")


def resolve(name_or_path: str | None) -> Path:
    """A profile file by path, or by the name of a bundled profile."""
    if not name_or_path:
        return hw_profiles.path(DEFAULT_PROFILE)
    p = Path(name_or_path)
    if p.exists() or "/" in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        return p
    bundled = hw_profiles.path(name_or_path)
    if bundled.exists():
        return bundled
    from firmware.errors import UserError
    raise UserError("hardware profile '{name}' not found: not a file, and not one of the "
                    "bundled profiles ({names})", name=name_or_path,
                    names=", ".join(hw_profiles.names()))


def load(name_or_path: str | None) -> Profile:
    """Read and check a profile; raise ConfigError listing every problem with its line."""
    src = Source.read(resolve(name_or_path))
    problems = check(src)
    if problems:
        raise ConfigError(problems)
    return _build(src)


def check(src: Source) -> list[Problem]:
    """Every problem of a profile (empty when valid)."""
    doc = src.data
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        return [src.problem((), N_("a profile must be a mapping of keys (driver, modules, ...)"))]
    for key in ("name", "driver"):
        if key not in doc:
            problems.append(src.problem((), Msg("required key '{key}' is missing", key=key)))
    for key, choices in _CHOICES.items():
        if key in doc and isinstance(doc[key], str) and doc[key] not in choices:
            problems.append(src.problem((key,), Msg(
                "{key} '{value}' is not one of {choices}{hint}", key=key, value=doc[key],
                choices=", ".join(choices), hint=suggest(doc[key], choices))))
    driver = doc.get("driver")
    if driver == "gsm":
        _check_keys(src, doc, (), _GSM_KEYS, problems)
        _check_gsm(src, doc, problems)
    elif driver == "e1":
        _check_e1(src, doc, problems)
    return problems


def _check_keys(src: Source, doc: dict, path: tuple, spec: dict, problems: list[Problem]) -> None:
    for key, value in doc.items():
        if key not in spec:
            problems.append(src.problem(path + (key,), Msg("unknown key '{key}'{hint}", key=key,
                                                           hint=suggest(key, spec))))
            continue
        want = spec[key]
        if isinstance(value, bool) and want in (int, (int, float)):
            ok = False
        else:
            ok = isinstance(value, want)
        if not ok:
            problems.append(src.problem(path + (key,), Msg(
                "'{key}' must be {want}, got {got} {value}", key=key,
                want=_KINDS[want if isinstance(want, tuple) else (want,)],
                got=_KINDS.get((type(value),), type(value).__name__), value=repr(value))))


def _check_gsm(src: Source, doc: dict, problems: list[Problem]) -> None:
    dialect = doc.get("dialect", "generic")
    if dialect not in DIALECTS:
        problems.append(src.problem(("dialect",), Msg(
            "unknown dialect '{dialect}'; known: {known}{hint}", dialect=dialect,
            known=", ".join(DIALECTS), hint=suggest(dialect, DIALECTS))))
    modules = doc.get("modules")
    if not isinstance(modules, list) or not modules:
        problems.append(src.problem(("modules",), N_("a gsm profile needs 'modules': a list "
                                                     "with at least one module with its port")))
        modules = []
    seen: dict[str, int] = {}
    for i, mod in enumerate(modules):
        if not isinstance(mod, dict):
            problems.append(src.problem(("modules", i),
                                        N_("a module must be a mapping with 'port'")))
            continue
        _check_keys(src, mod, ("modules", i), _MODULE_KEYS, problems)
        number = mod.get("number")
        if isinstance(number, str) and not re.fullmatch(r"\+[1-9][0-9]{6,14}", number):
            problems.append(src.problem(("modules", i, "number"), Msg(
                "number {number} must be the SIM's number in E.164, e.g. +79161234567",
                number=repr(number))))
        port = mod.get("port")
        if not port:
            problems.append(src.problem(("modules", i), N_("module has no 'port' (a device "
                                                           "path, socket://host:port or sim://N)")))
        elif port in seen:
            problems.append(src.problem(("modules", i, "port"), Msg(
                "port '{port}' already used by module {n}", port=port, n=seen[port] + 1)))
        else:
            seen[port] = i
        _check_module_audio(src, doc, mod, i, problems)
    audio = doc.get("audio", "none")
    if audio in VOICE_METHODS and audio != "none" and dialect in DIALECTS \
            and DIALECTS[dialect].voice != audio:
        problems.append(src.problem(("audio",), Msg(
            "a {dialect} module carries voice as {voice}, not {audio}", dialect=dialect,
            voice=DIALECTS[dialect].voice, audio=audio)))
    for key in ("init",):
        for j, cmd in enumerate(doc.get(key) or []):
            if not isinstance(cmd, str) or not cmd.upper().startswith("AT"):
                problems.append(src.problem((key, j), Msg("init command {cmd} must start with AT",
                                                          cmd=repr(cmd))))
            elif re.fullmatch(r"AT\+CLIR=[01]", cmd.upper().replace(" ", "")):
                problems.append(src.problem((key, j), Msg(
                    "init command {cmd} would hide the caller's number, which the law forbids; "
                    "remove it (the driver sets AT+CLIR=2)", cmd=repr(cmd))))
    if isinstance(doc.get("hangup"), str) and doc["hangup"] not in ("ATH", "AT+CHUP", "ATH0"):
        problems.append(src.problem(("hangup",), N_("hangup must be ATH, ATH0 or AT+CHUP")))
    if doc.get("reset") == "hook" and not doc.get("reset_hook"):
        problems.append(src.problem(("reset",), N_("reset: hook needs 'reset_hook' (a command)")))
    if isinstance(doc.get("limits"), dict):
        _check_keys(src, doc["limits"], ("limits",), _LIMIT_KEYS, problems)
        for k, v in doc["limits"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0:
                problems.append(src.problem(("limits", k), Msg("{key} must be positive, got {value}",
                                                               key=k, value=v)))
    _check_ussd(src, doc.get("ussd_balance"), problems)
    if isinstance(doc.get("max_failures"), int) and doc["max_failures"] < 1:
        problems.append(src.problem(("max_failures",), N_("max_failures must be 1 or more")))
    baud = doc.get("baud")
    if isinstance(baud, int) and baud not in (9600, 19200, 38400, 57600, 115200, 230400,
                                              460800, 921600):
        problems.append(src.problem(("baud",), Msg("baud {baud} is not a standard rate",
                                                   baud=baud)))
    sim = doc.get("simulate")
    if isinstance(sim, dict):
        _check_keys(src, sim, ("simulate",), _SIM_KEYS, problems)
        pop = sim.get("population")
        if isinstance(pop, dict):
            try:
                Population.from_dict(pop)
            except (TypeError, ValueError) as exc:
                problems.append(src.problem(("simulate", "population"), Msg(
                    "the simulated population is wrong: {what}", what=str(exc))))


def _check_ussd(src: Source, codes, problems: list[Problem]) -> None:
    if isinstance(codes, str):
        codes = {None: codes}
    elif not isinstance(codes, dict):
        return
    for key, code in codes.items():
        path = ("ussd_balance",) if key is None else ("ussd_balance", str(key))
        if key is not None and (isinstance(key, bool) or not isinstance(key, (str, int)) or (
                isinstance(key, int) or str(key).isdigit()) and not re.fullmatch(
                r"[1-7][0-9]{4,5}", str(key))):
            problems.append(src.problem(path, Msg(
                "operator {key}: write its MCC and MNC (5 or 6 digits, e.g. 25001), its name as "
                "the network shows it (e.g. MegaFon), or default", key=repr(key))))
        if not isinstance(code, str) or not _USSD_CODE.fullmatch(code):
            problems.append(src.problem(path, Msg(
                "balance code {code} is not a USSD request like \"*100#\" (quote it: a bare * "
                "starts a YAML alias)", code=repr(code))))


def _check_module_audio(src: Source, doc: dict, mod: dict, i: int,
                        problems: list[Problem]) -> None:
    audio = doc.get("audio", "none")
    simulated = str(mod.get("port", "")).startswith("sim://")  # the simulator brings its port
    if audio in SERIAL_VOICE and not mod.get("audio_port") and not simulated:
        problems.append(src.problem(("modules", i), Msg(
            "audio {audio} needs the module's 'audio_port' (its audio serial port, e.g. "
            "/dev/serial/by-id/...-if01-port0)", audio=audio)))
    if audio == "analog-seat" and not mod.get("seat"):
        problems.append(src.problem(("modules", i), N_(
            "audio analog-seat needs the module's 'seat': the operator position its analog "
            "audio is wired to")))
    if mod.get("audio_port") and audio not in SERIAL_VOICE:
        problems.append(src.problem(("modules", i, "audio_port"), Msg(
            "an audio_port is used only with audio {methods}", methods=" | ".join(SERIAL_VOICE))))
    if mod.get("seat") and audio != "analog-seat":
        problems.append(src.problem(("modules", i, "seat"),
                                    N_("a seat is used only with audio analog-seat")))


def _check_e1(src: Source, doc: dict, problems: list[Problem]) -> None:
    try:
        from firmware.e1 import profile as e1profile
    except ImportError:
        problems.append(src.problem(("driver",), N_("this build has no E1 driver")))
        return
    for path, message in e1profile.check(doc):
        problems.append(src.problem(tuple(path), message))


def _build(src: Source) -> Profile:
    doc = src.data
    prof = Profile(name=doc["name"], driver=doc["driver"], source=src.filename, raw=doc)
    if prof.driver != "gsm":
        return prof
    from firmware.gsm.dialects import DIALECTS as D
    dialect = D[doc.get("dialect", "generic")]
    prof.dialect = dialect.name
    baud = int(doc.get("baud", 115200))
    prof.modules = [ModuleSpec(name=m.get("name") or f"gsm{i}", port=m["port"],
                               baud=int(m.get("baud", baud)), number=m.get("number"),
                               audio_port=m.get("audio_port"), seat=m.get("seat"))
                    for i, m in enumerate(doc["modules"])]
    prof.audio = doc.get("audio", "none")
    prof.rtscts = bool(doc.get("rtscts", False))
    prof.init = tuple(doc.get("init") or dialect.init)
    prof.hangup = doc.get("hangup", dialect.hangup)
    prof.call_progress = doc.get("call_progress", dialect.call_progress)
    prof.sms_mode = doc.get("sms_mode", "pdu")
    prof.reset = doc.get("reset", "cfun")
    prof.reset_hook = doc.get("reset_hook")
    prof.limits = dict(doc.get("limits") or {})
    codes = doc.get("ussd_balance")
    prof.ussd_balance = ({str(k): v for k, v in codes.items()} if isinstance(codes, dict)
                         else codes)
    prof.health_interval_s = float(doc.get("health_interval_s", 30))
    prof.balance_interval_s = float(doc.get("balance_interval_s", 3600))
    prof.command_timeout_s = float(doc.get("command_timeout_s", 5))
    prof.max_failures = int(doc.get("max_failures", 5))
    sim = doc.get("simulate") or {}
    prof.bridge_delay_s = float(sim.get("bridge_delay_s", 0.3))
    prof.population = dict(sim.get("population") or {})
    return prof
