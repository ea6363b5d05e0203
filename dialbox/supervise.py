"""The supervisor: long-lived tasks restarted with backoff when they die, failures counted."""
from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Awaitable, Callable

import structlog

from firmware.clock import Clock
from firmware.errors import Msg, reason_of

log = structlog.get_logger(__name__)

ENDED = Msg("ended on its own")
CANCELLED = Msg("cancelled")

# A task that ran this long without failing starts again from the shortest backoff.
HEALTHY_S = 60.0


@dataclass
class Child:
    """One supervised task as the console and the dashboard show it."""

    name: str  # a Msg or N_-marked text: pages show it translated
    state: str = "starting"  # running, restarting, stopped
    restarts: int = 0
    failures: int = 0
    last_error: str = ""  # in full, for the console and the log
    last_reason: str = ""  # a Msg for pages: translated, without an exception's own words
    last_failure_at: float | None = None  # wall time
    started_at: float = 0.0  # clock time of the current run
    streak: int = 0  # failures in a row, for the backoff


class Supervisor:
    """Runs coroutines (``run``) and adopts components' own tasks (``watch``)."""

    def __init__(self, clock: Clock, *, backoff_s: float = 1.0,
                 backoff_max_s: float = 60.0, poll_s: float = 1.0) -> None:
        self.clock = clock
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.poll_s = poll_s
        self.children: dict[str, Child] = {}
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    def run(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Run ``factory()`` until stopped; restart it with backoff whenever it ends."""
        child = self.children[name] = Child(name)
        self._tasks.append(asyncio.get_running_loop().create_task(
            self._keep(child, factory), name=f"supervise:{name}"))

    def watch(self, name: str, task_of: Callable[[], asyncio.Task | None],
              restart: Callable[[], object]) -> None:
        """Adopt a component's task: when it ends while nobody stopped it, ``restart()``."""
        child = self.children[name] = Child(name, state="running", started_at=self.clock.now())
        self._tasks.append(asyncio.get_running_loop().create_task(
            self._watch(child, task_of, restart), name=f"watch:{name}"))

    def snapshot(self) -> list[dict]:
        return [{"name": c.name, "state": c.state, "restarts": c.restarts,
                 "failures": c.failures, "last_error": c.last_error,
                 "last_reason": c.last_reason, "last_failure_at": c.last_failure_at}
                for c in self.children.values()]

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in self.children.values():
            c.state = "stopped"

    # --- internals ----------------------------------------------------------------------------
    async def _keep(self, child: Child, factory) -> None:
        while not self._stopping:
            child.state, child.started_at = "running", self.clock.now()
            try:
                await factory()
                error = ENDED
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the point of a supervisor: one task's bug is contained
                log.exception("task_failed", task=child.name)
                error = exc
            await self.clock.sleep(self._failed(child, error))

    async def _watch(self, child: Child, task_of, restart) -> None:
        while not self._stopping:
            await self.clock.sleep(self.poll_s)
            task = task_of()
            if task is None or not task.done() or self._stopping:
                continue
            if task.cancelled():
                error = CANCELLED
            elif task.exception() is not None:
                error = task.exception()
            else:
                error = ENDED
            await self.clock.sleep(self._failed(child, error))
            try:
                result = restart()
                if inspect.isawaitable(result):
                    await result
                child.state, child.started_at = "running", self.clock.now()
                log.info("task_restarted", task=child.name, restarts=child.restarts)
            except Exception as exc:
                log.exception("task_restart_failed", task=child.name)
                child.last_error = f"restart failed: {_text(exc)}"
                child.last_reason = Msg("restart failed: {reason}", reason=_reason(exc))

    def _failed(self, child: Child, error: Msg | BaseException) -> float:
        """Count a failure; the clock seconds to wait before the restart (doubling in a row)."""
        if self.clock.now() - child.started_at >= HEALTHY_S:
            child.streak = 0
        child.streak += 1
        backoff = min(self.backoff_s * 2 ** (child.streak - 1), self.backoff_max_s)
        child.failures += 1
        child.restarts += 1
        died = isinstance(error, BaseException)
        child.last_error = _text(error) if died else str(error)
        child.last_reason = _reason(error) if died else error
        child.last_failure_at = self.clock.wall()
        child.state = "restarting"
        log.warning("task_died", task=child.name, error=child.last_error, failures=child.failures,
                    restart_in_s=backoff)
        return backoff


def _text(exc: BaseException) -> str:
    """An exception in full, for the console and the log."""
    return f"{type(exc).__name__}: {exc}"


def _reason(exc: BaseException) -> Msg:
    """An exception for a page: its own Msg when it carries one; else what kind of error it was
    (its words, maybe a path, stay in the log and on the console)."""
    found = reason_of(exc)
    if isinstance(found, Msg):
        return found
    return Msg("unexpected error ({kind}); the log has the details", kind=type(exc).__name__)
