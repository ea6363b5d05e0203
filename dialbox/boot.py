"""Boot: check the config and every enabled profile, start what can start, report what did not.

A bad profile is reported with its ``file:line`` and skipped; the rest of the box starts. The
report (what started, what failed and why) goes to the log, the console (``show boot``) and the
dashboard.
"""
from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import structlog

from dialbox.config import ApplianceConfig
from firmware import profiles
from firmware.errors import N_, Msg, UserError, reason_of
from firmware.yamlsrc import ConfigError

log = structlog.get_logger(__name__)

LOCK_NAME = "dialbox.lock"


@dataclass(frozen=True, slots=True)
class BootItem:
    """One part of the box. ``what`` and ``detail`` are Msg: English (file paths in full) on the
    console and in the log, translated on pages (a path's file name only, i18n.message_of)."""

    what: Msg  # "profile sim800", "store", "web admin 127.0.0.1:8080", ...
    ok: bool
    detail: Msg = Msg("")


def as_msg(text: str) -> Msg:
    """A message a page can translate: a Msg as it is; other text (N_-marked) as its template."""
    return text if isinstance(text, Msg) else Msg(text)


def shown_path(name: str) -> str | PurePath:
    """A profile or file named in the report: a path as a PurePath (pages show its file name
    only), a bare name (a bundled profile) as it is."""
    return PurePath(name) if "/" in str(name) else str(name)


@dataclass
class BootReport:
    """What started at boot and what did not, with the reason."""

    at: float = field(default_factory=time.time)
    items: list[BootItem] = field(default_factory=list)

    def add(self, what: str, ok: bool, detail: str = "") -> None:
        """``what`` and ``detail``: Msg built from a literal template, or N_-marked text."""
        what, detail = as_msg(what), as_msg(detail)
        self.items.append(BootItem(what, ok, detail))
        if ok:
            log.info("boot_step", what=what, detail=detail)
        else:
            log.error("boot_step_failed", what=what, detail=detail)

    @property
    def failed(self) -> list[BootItem]:
        return [i for i in self.items if not i.ok]

    def text(self) -> list[str]:
        """One line per item, as the console shows it."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        head = f"boot at {stamp}: {len(self.items) - len(self.failed)} started, " \
               f"{len(self.failed)} failed"
        return [head] + [f"  {'ok    ' if i.ok else 'FAILED'} {i.what}"
                         + (f": {i.detail}" if i.detail else "") for i in self.items]

    def as_dict(self) -> dict:
        return {"at": self.at, "failed": len(self.failed),
                "items": [{"what": i.what, "ok": i.ok, "detail": i.detail} for i in self.items]}


def load_profiles(cfg: ApplianceConfig, report: BootReport) -> list[str]:
    """The enabled profiles that load cleanly; each bad one goes in the report with file:line."""
    good: list[str] = []
    for name in cfg.profiles:
        what = Msg("profile {name}", name=shown_path(name))
        try:
            prof = profiles.load(name)
        except ConfigError as exc:
            for p in exc.problems:
                report.add(what, False, Msg("{file}:{line}: {problem} (skipped)",
                                            file=PurePath(p.file), line=p.line,
                                            problem=as_msg(p.message)))
            continue
        except UserError as exc:
            report.add(what, False, Msg("{reason} (skipped)", reason=as_msg(reason_of(exc))))
            continue
        good.append(name)
        report.add(what, True, Msg("{driver}, from {file}", driver=prof.driver.upper(),
                                   file=PurePath(prof.source)))
    for name in cfg.disabled_profiles:
        report.add(Msg("profile {name}", name=shown_path(name)), True,
                   N_("disabled in the config, not started"))
    return good


class DataLock:
    """One appliance per data directory; a restore refuses to run while it is held."""

    def __init__(self, data: Path) -> None:
        self.path = Path(data) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError("{data}: another dialbox is running on this data directory (stop "
                            "it first)", data=self.path.parent) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def held(data: Path) -> bool:
        """Whether a running appliance holds the data directory."""
        path = Path(data) / LOCK_NAME
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


def set_timezone(name: str | None, report: BootReport) -> None:
    """The shop's time zone for local times the box prints and schedules (nightly backup)."""
    if not name:
        return
    os.environ["TZ"] = name
    time.tzset()
    report.add(N_("time zone"), True, name)


def box_status(app) -> dict | None:
    """The runtime's part of the dashboard: boot failures, task failures, clock (None in tests
    that start the appliance without the runtime)."""
    runtime = getattr(app, "runtime", None)
    if runtime is None:
        return None
    sup = runtime.supervisor
    tasks = [t for t in (sup.snapshot() if sup else []) if t["failures"]]
    clock = runtime.extras.get("clock")
    return {"boot": runtime.boot.as_dict(),
            "boot_failed": [{"what": i.what, "detail": i.detail} for i in runtime.boot.failed],
            "tasks_failing": tasks,
            "clock": clock.as_dict() if clock is not None else None}
