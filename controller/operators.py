"""Operators (collectors) and their positions: free, reserved for a call, talking, wrapping up."""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from firmware.clock import Clock
from firmware.sim.population import lognormal

FREE, RESERVED, TALKING, WRAP = "free", "reserved", "talking", "wrap_up"


@dataclass
class Operator:
    name: str
    position: str
    state: str = FREE
    call_id: str | None = None
    since: float = 0.0
    talk_s: float = 0.0
    wrap_s: float = 0.0
    calls: int = 0


class OperatorPool:
    """The floor. Simulated operators wrap up for a drawn time and become free by themselves."""

    def __init__(self, n: int, clock: Clock, *, wrap_mean_s: float = 10.0,
                 wrap_sd_s: float = 4.0, seed: int | None = None) -> None:
        self.clock = clock
        self.ops = [Operator(f"Оператор {i + 1}", f"pos{i + 1}") for i in range(n)]
        self._wrap = (wrap_mean_s, wrap_sd_s)
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task] = set()
        self.changed = asyncio.Event()

    def free(self) -> list[Operator]:
        return [o for o in self.ops if o.state == FREE]

    def by_call(self, call_id: str) -> Operator | None:
        return next((o for o in self.ops if o.call_id == call_id), None)

    def reserve(self, call_id: str) -> Operator | None:
        free = self.free()
        if not free:
            return None
        op = min(free, key=lambda o: o.since)  # longest idle first: fair to people
        self._set(op, RESERVED, call_id)
        return op

    def talking(self, op: Operator) -> None:
        self._set(op, TALKING, op.call_id)

    def release(self, op: Operator, *, talked: bool) -> None:
        """The call ended: wrap up after a conversation, else straight back to free."""
        if talked:
            self._set(op, WRAP, None)
            task = asyncio.get_running_loop().create_task(self._wrap_up(op))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._set(op, FREE, None)

    async def _wrap_up(self, op: Operator) -> None:
        wrap = lognormal(self._rng, *self._wrap)
        await self.clock.sleep(wrap)
        op.wrap_s += wrap
        if op.state == WRAP:
            self._set(op, FREE, None)

    def _set(self, op: Operator, state: str, call_id: str | None) -> None:
        now = self.clock.now()
        if op.state == TALKING:
            op.talk_s += now - op.since
        op.state, op.call_id, op.since = state, call_id, now
        if state == TALKING:
            op.calls += 1
        self.changed.set()

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def snapshot(self) -> list[dict]:
        return [{"name": o.name, "position": o.position, "state": o.state, "calls": o.calls}
                for o in self.ops]
