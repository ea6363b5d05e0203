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
from pathlib import Path

import structlog

from dialbox.config import ApplianceConfig
from firmware import profiles
from firmware.errors import UserError
from firmware.yamlsrc import ConfigError

log = structlog.get_logger(__name__)

LOCK_NAME = "dialbox.lock"


@dataclass(frozen=True, slots=True)
class BootItem:
    what: str  # "profile sim800", "store", "web admin 127.0.0.1:8080", ...
    ok: bool
    detail: str = ""


@dataclass
class BootReport:
    """What started at boot and what did not, with the reason."""

    at: float = field(default_factory=time.time)
    items: list[BootItem] = field(default_factory=list)

    def add(self, what: str, ok: bool, detail: str = "") -> None:
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
        try:
            prof = profiles.load(name)
        except ConfigError as exc:
            for problem in exc.problems:
                report.add(f"profile {name}", False, f"{problem} (skipped)")
            continue
        except UserError as exc:
            report.add(f"profile {name}", False, f"{exc} (skipped)")
            continue
        good.append(name)
        report.add(f"profile {name}", True, f"{prof.driver}, from {prof.source}")
    for name in cfg.disabled_profiles:
        report.add(f"profile {name}", True, "disabled in the config, not started")
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
            raise UserError(f"{self.path.parent}: another dialbox is running on this data "
                            "directory (stop it first)") from None
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
    report.add("time zone", True, name)


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
