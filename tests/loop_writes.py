"""A guard that sees SQLite writes made on the event loop's thread while the box runs.

Every commit of the store is fsynced (``synchronous=FULL``) and the loop's connection waits up to
5 s for a lock the writer thread holds: a write on the loop stalls every protocol timer and the
2-second bridge deadline. The box's writes go to the writer thread (``store.run``/``submit``);
this guard watches the loop's own connection (``store.db``) through SQLite's trace callback, which
sees every statement as it runs (cached statements too), and notes the statements that write
(INSERT/UPDATE/DELETE/REPLACE, BEGIN IMMEDIATE, COMMIT, schema changes) when the thread running
them runs an event loop.

Armed once ``Appliance.start()`` has returned (migrations, recovery of interrupted calls, the
first admin and the demo campaign are written at boot, before the box serves) and disarmed when
``Appliance.stop()`` begins (the last writes of a stopping box wait for nothing).
"""
from __future__ import annotations

import asyncio
import re
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_WRITE = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE|REPLACE|COMMIT|END|CREATE|DROP|ALTER|"
                    r"BEGIN\s+(?:IMMEDIATE|EXCLUSIVE)|RELEASE)\b", re.I)
_CTE_WRITE = re.compile(r"^\s*WITH\b.*\b(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.I | re.S)


def is_write(sql: str) -> bool:
    """Whether a statement SQLite is about to run writes to the file (or ends a write)."""
    if sql.lstrip().startswith("--"):  # a trigger's statements, reported by their trigger
        return False
    if re.match(r"^\s*CREATE\s+TEMP", sql, re.I):
        return False
    return bool(_WRITE.match(sql) or _CTE_WRITE.match(sql))


@dataclass
class LoopWrite:
    sql: str
    where: list[str]  # the frames of this repository that led to it, innermost last

    @property
    def by_the_test(self) -> bool:
        """The test itself called the store layer (its set-up, or a check): not the box."""
        tests = [i for i, f in enumerate(self.where) if f.startswith("tests/")]
        if not tests:
            return False
        inner = self.where[tests[-1] + 1:]  # what the test's innermost frame called
        return not inner or inner[0].startswith("controller/")

    def __str__(self) -> str:
        return f"{' '.join(self.sql.split())[:120]}\n      " + "\n      ".join(self.where[-8:])


@dataclass
class LoopWriteGuard:
    writes: list[LoopWrite] = field(default_factory=list)
    armed: bool = False
    _paused: int = 0

    def watch(self, store) -> None:
        """Watch this store's loop connection from now on."""
        store.db.set_trace_callback(self._trace)
        self.armed = True

    @contextmanager
    def paused(self):
        """A test's own set-up writes (a user added before the box is driven) are not the box's."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    @property
    def box_writes(self) -> list[LoopWrite]:
        """The writes the box made (not the test's own calls into the store layer)."""
        return [w for w in self.writes if not w.by_the_test]

    def report(self, writes: list[LoopWrite] | None = None) -> str:
        return "\n".join(f"  {w}" for w in (self.writes if writes is None else writes))

    def _trace(self, sql: str) -> None:
        if not self.armed or self._paused or not is_write(sql):
            return
        if asyncio._get_running_loop() is None:  # another thread: not the loop's time
            return
        frames = [f"{Path(f.filename).relative_to(ROOT)}:{f.lineno} {f.name}"
                  for f in traceback.extract_stack()[:-1]
                  if Path(f.filename).is_absolute() and Path(f.filename).is_relative_to(ROOT)
                  and ".venv" not in f.filename and not f.filename.endswith("loop_writes.py")]
        self.writes.append(LoopWrite(sql, frames))


def install(monkeypatch, guard: LoopWriteGuard) -> None:
    """Arm ``guard`` on every appliance this test starts, from the end of its start to its stop."""
    from dialbox.appliance import Appliance
    start, stop = Appliance.start, Appliance.stop

    async def started(self, *a, **kw):
        await start(self, *a, **kw)
        guard.watch(self.store)

    async def stopping(self, *a, **kw):
        guard.armed = False
        return await stop(self, *a, **kw)

    monkeypatch.setattr(Appliance, "start", started)
    monkeypatch.setattr(Appliance, "stop", stopping)
