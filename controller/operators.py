"""Operators (collectors) and their positions: not ready, free, reserved, talking, wrapping up.

Two kinds share one floor: people at the agent desk, who say when they are ready and end their
wrap-up with an outcome, and simulated operators (``--simulate``), who wrap up for a drawn time
and report what the simulated debtor said through ``on_sim_wrap``.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Awaitable, Callable

from firmware.clock import Clock
from firmware.sim.population import lognormal

NOT_READY, FREE, RESERVED, TALKING, WRAP = "not_ready", "free", "reserved", "talking", "wrap_up"


@dataclass
class Operator:
    name: str
    position: str
    username: str | None = None  # a person logged in at the desk; None: simulated
    state: str = FREE
    call_id: str | None = None  # the call reserved for, talking on, or wrapping up
    since: float = 0.0
    talk_s: float = 0.0
    wrap_s: float = 0.0
    calls: int = 0

    @property
    def human(self) -> bool:
        return self.username is not None


class OperatorPool:
    """The floor."""

    def __init__(self, n_simulated: int, clock: Clock, *, wrap_mean_s: float = 10.0,
                 wrap_sd_s: float = 4.0, seed: int | None = None) -> None:
        self.clock = clock
        self.ops = [Operator(f"Оператор {i + 1}", f"pos{i + 1}") for i in range(n_simulated)]
        self._wrap = (wrap_mean_s, wrap_sd_s)
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task] = set()
        self.on_sim_wrap: Callable[[Operator, str], Awaitable[None]] | None = None
        self.on_change: Callable[[], None] | None = None
        self.on_wrap_end: Callable[[Operator, float], None] | None = None

    # --- people at the desk -----------------------------------------------------------------
    def login(self, username: str, name: str | None = None) -> Operator:
        """The person's position on the floor; new positions start not ready."""
        op = self.human(username)
        if op is None:
            op = Operator(name or username, f"desk-{username}", username, NOT_READY,
                          since=self.clock.now())
            self.ops.append(op)
        return op

    def human(self, username: str) -> Operator | None:
        return next((o for o in self.ops if o.username == username), None)

    def set_ready(self, op: Operator, ready: bool) -> None:
        """Ready takes calls; not ready takes none (a call already up stays)."""
        if ready and op.state == NOT_READY:
            self._set(op, FREE, None)
        elif not ready and op.state == FREE:
            self._set(op, NOT_READY, None)

    def finish_wrap(self, op: Operator) -> None:
        """The person recorded the outcome: back to taking calls."""
        if op.state == WRAP:
            wrap = self.clock.now() - op.since
            op.wrap_s += wrap
            self._set(op, FREE, None)
            if self.on_wrap_end is not None:
                self.on_wrap_end(op, wrap)

    # --- the dialer's side ------------------------------------------------------------------
    def free(self) -> list[Operator]:
        return [o for o in self.ops if o.state == FREE]

    def by_call(self, call_id: str) -> Operator | None:
        return next((o for o in self.ops if o.call_id == call_id), None)

    def next_free(self) -> Operator | None:
        """The operator the next reservation goes to: longest idle first, fair to people."""
        free = self.free()
        return min(free, key=lambda o: o.since) if free else None

    def reserve(self, call_id: str) -> Operator | None:
        op = self.next_free()
        if op is not None:
            self._set(op, RESERVED, call_id)
        return op

    def talking(self, op: Operator) -> None:
        self._set(op, TALKING, op.call_id)

    def release(self, op: Operator, *, talked: bool) -> None:
        """The call ended: wrap up after a conversation, else straight back to free."""
        if not talked:
            self._set(op, FREE, None)
            return
        call_id = op.call_id
        self._set(op, WRAP, call_id)  # the call id stays: the outcome belongs to it
        if not op.human:
            task = asyncio.get_running_loop().create_task(self._sim_wrap_up(op, call_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sim_wrap_up(self, op: Operator, call_id: str | None) -> None:
        wrap = lognormal(self._rng, *self._wrap)
        await self.clock.sleep(wrap)
        if self.on_sim_wrap is not None and call_id is not None:
            await self.on_sim_wrap(op, call_id)
        op.wrap_s += wrap
        if op.state == WRAP:
            self._set(op, FREE, None)
            if self.on_wrap_end is not None:
                self.on_wrap_end(op, wrap)

    def _set(self, op: Operator, state: str, call_id: str | None) -> None:
        now = self.clock.now()
        if op.state == TALKING:
            op.talk_s += now - op.since
        op.state, op.call_id, op.since = state, call_id, now
        if state == TALKING:
            op.calls += 1
        if self.on_change is not None:
            self.on_change()

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def snapshot(self) -> list[dict]:
        return [{"name": o.name, "position": o.position, "state": o.state, "calls": o.calls,
                 "human": o.human} for o in self.ops]
