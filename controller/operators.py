"""Operators (collectors) and their positions: not ready, free, reserved, talking, wrapping up, break.

Two kinds share one floor: people at the agent desk, who say when they are ready and end their
wrap-up with an outcome, and simulated operators (``--simulate``), who wrap up for a drawn time
and report what the simulated debtor said through ``on_sim_wrap``. Several campaigns share the
floor: each sees it through a :class:`CampaignFloor`, only the operators it may use, and only
the calls that are its own.

A break or a desk that went away takes effect at once on an idle operator, and after the call
and its wrap-up on a busy one; nothing new is reserved for him meanwhile (he is not free).
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Awaitable, Callable

from firmware.clock import Clock
from firmware.durations import lognormal

NOT_READY, FREE, RESERVED, TALKING, WRAP = "not_ready", "free", "reserved", "talking", "wrap_up"
BREAK = "break"
AWAY = (NOT_READY, BREAK)  # states that take no calls and do not count on the floor
DESK_GONE = "desk_gone"  # the reason of a not-ready operator whose desk closed or went silent
WRAP_LIMIT = "wrap_limit"  # the reason of one paused by the campaign's wrap-up time limit
MISSED = "missed_call"  # the reason of one who let a call offered to his desk ring out


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
    campaign: int | None = None  # the campaign of the call held
    team: str | None = None
    reason: str = ""  # why not ready or on break (the break reason a person gave)
    pending: str | None = None  # break reason or DESK_GONE, taking effect after this call
    outcome_saved: str | None = None  # the call whose outcome was saved during the conversation
    outcome_kind: str | None = None  # and that outcome (the desk shows it, offers no second)
    counted_to: float = 0.0  # time in the current state is counted up to here (occupancy)
    # What the time since counted_to is counted as: the state, or DESK_GONE for a not-ready
    # operator whose desk closed (not logged in: the reports leave that time out).
    counted_as: str | None = None

    @property
    def human(self) -> bool:
        return self.username is not None


class OperatorPool:
    """The floor."""

    def __init__(self, n_simulated: int, clock: Clock, *, wrap_mean_s: float = 10.0,
                 wrap_sd_s: float = 4.0, seed: int | None = None) -> None:
        self.clock = clock
        self.ops = [Operator(f"Оператор {i + 1}", f"pos{i + 1}", since=clock.now(),
                             counted_to=clock.now()) for i in range(n_simulated)]
        self._time: dict[tuple[str, str], float] = {}  # (position, state) -> seconds not taken
        self._wrap = (wrap_mean_s, wrap_sd_s)
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task] = set()
        self.on_sim_wrap: Callable[[Operator, str], Awaitable[None]] | None = None
        self.on_change: Callable[[], None] | None = None
        self.on_wrap_end: Callable[[Operator, float], None] | None = None
        # A wrap-up ended by the campaign's time limit, before any outcome: (op, call id, wrap s).
        self.on_wrap_timeout: Callable[[Operator, str, float], None] | None = None
        self._watchers: list[Callable[[], None]] = []
        self._wrap_watchers: list[Callable[[Operator, float, int | None], None]] = []
        # The wrap-up time limit of a campaign: campaign id -> (seconds, "ready" | "paused").
        self.wrap_limit: Callable[[int | None], tuple[float, str] | None] = lambda cid: None
        # Awaited before a call is put through to a person (op, call id): his desk shows the
        # debtor's card first. Set by the box; it returns soon whatever the desk does.
        self.show_card: Callable[[Operator, str], Awaitable[None]] | None = None

    # --- people at the desk -----------------------------------------------------------------
    def login(self, username: str, name: str | None = None) -> Operator:
        """The person's position on the floor; new positions start not ready."""
        op = self.human(username)
        if op is None:
            op = Operator(name or username, f"desk-{username}", username, NOT_READY,
                          since=self.clock.now(), counted_to=self.clock.now())
            self.ops.append(op)
        return op

    def human(self, username: str) -> Operator | None:
        return next((o for o in self.ops if o.username == username), None)

    def set_ready(self, op: Operator, ready: bool) -> None:
        """Ready takes calls; not ready takes none (a call already up stays)."""
        if ready:
            op.pending = None  # Ready cancels a break asked for during the call
            if op.state in AWAY:
                op.reason = ""
                self._set(op, FREE, None)
        elif op.state == FREE:
            self._set(op, NOT_READY, None)

    def take_break(self, op: Operator, reason: str) -> None:
        """A break: at once when idle; after the call and its wrap-up otherwise."""
        reason = reason.strip() or "break"
        if op.state in (FREE, NOT_READY, BREAK):
            op.reason, op.pending = reason, None
            self._set(op, BREAK, None)
        else:
            op.pending = reason
            self._notify()

    def desk_gone(self, op: Operator) -> None:
        """The desk closed or stopped answering: no calls until the person presses Ready."""
        if op.state in (FREE, NOT_READY, BREAK):
            op.reason, op.pending = DESK_GONE, None
            self._set(op, NOT_READY, None)
        else:
            op.pending = DESK_GONE
            self._notify()

    def missed(self, op: Operator) -> None:
        """He let a call offered to his desk ring out: paused (he is likely away) until he
        presses Ready, so the next caller does not ring on an empty desk too."""
        if op.state == RESERVED:
            op.pending = op.pending or MISSED
            self._after_call(op)

    def finish_wrap(self, op: Operator) -> None:
        """The person recorded the outcome: back to taking calls (or to the break asked for)."""
        if op.state == WRAP:
            self._end_wrap(op, self.clock.now() - op.since)

    # --- the dialer's side ------------------------------------------------------------------
    def watch(self, on_change: Callable[[], None],
              on_wrap_end: Callable[[Operator, float, int | None], None] | None = None) -> None:
        """Be told of every change on the floor (and of each wrap-up's end, with its campaign)."""
        self._watchers.append(on_change)
        if on_wrap_end is not None:
            self._wrap_watchers.append(on_wrap_end)

    def unwatch(self, on_change, on_wrap_end=None) -> None:
        if on_change in self._watchers:
            self._watchers.remove(on_change)
        if on_wrap_end in self._wrap_watchers:
            self._wrap_watchers.remove(on_wrap_end)

    def free(self) -> list[Operator]:
        return [o for o in self.ops if o.state == FREE]

    def by_call(self, call_id: str) -> Operator | None:
        return next((o for o in self.ops if o.call_id == call_id), None)

    def next_free(self, among: Callable[[Operator], bool] | None = None) -> Operator | None:
        """The operator the next reservation goes to: longest idle first, fair to people."""
        free = [o for o in self.free() if among is None or among(o)]
        return min(free, key=lambda o: o.since) if free else None

    def reserve(self, call_id: str, *, campaign: int | None = None,
                among: Callable[[Operator], bool] | None = None) -> Operator | None:
        op = self.next_free(among)
        if op is not None:
            op.campaign = campaign
            self._set(op, RESERVED, call_id)
        return op

    def talking(self, op: Operator) -> None:
        self._set(op, TALKING, op.call_id)

    def release(self, op: Operator, *, talked: bool) -> None:
        """The call ended: wrap up after a conversation, else straight back to free.

        An outcome saved during the conversation is the wrap-up: it ends with the call.
        """
        call_id = op.call_id
        if not talked or (call_id is not None and op.outcome_saved == call_id):
            if talked:
                self._end_wrap(op, 0.0)
            else:
                self._after_call(op)
            return
        self._set(op, WRAP, call_id)  # the call id stays: the outcome belongs to it
        if not op.human:
            self._spawn(self._sim_wrap_up(op, call_id))
            return
        limit = self.wrap_limit(op.campaign)
        if limit is not None:
            self._spawn(self._wrap_timer(op, call_id, *limit))

    async def _sim_wrap_up(self, op: Operator, call_id: str | None) -> None:
        wrap = lognormal(self._rng, *self._wrap)
        await self.clock.sleep(wrap)
        if self.on_sim_wrap is not None and call_id is not None:
            await self.on_sim_wrap(op, call_id)
        if op.state == WRAP and op.call_id == call_id:
            self._end_wrap(op, wrap)

    async def _wrap_timer(self, op: Operator, call_id: str, limit_s: float, after: str) -> None:
        """The campaign's wrap-up limit: the person is made ready, or paused, when it passes."""
        await self.clock.sleep(limit_s)
        if op.state == WRAP and op.call_id == call_id:
            if after == "paused" and not op.pending:
                op.pending = WRAP_LIMIT
            wrap = self.clock.now() - op.since
            if self.on_wrap_timeout is not None:
                self.on_wrap_timeout(op, call_id, wrap)
            self._end_wrap(op, wrap)

    def _end_wrap(self, op: Operator, wrap: float) -> None:
        op.wrap_s += wrap
        campaign = op.campaign
        self._after_call(op)
        for w in list(self._wrap_watchers):
            w(op, wrap, campaign)
        if self.on_wrap_end is not None:
            self.on_wrap_end(op, wrap)

    def _after_call(self, op: Operator) -> None:
        """Free again, or into the break / not-ready asked for during the call."""
        pending, op.pending, op.campaign, op.outcome_saved = op.pending, None, None, None
        op.outcome_kind = None
        if pending is None:
            self._set(op, FREE, None)
        elif pending in (DESK_GONE, WRAP_LIMIT, MISSED):
            op.reason = pending
            self._set(op, NOT_READY, None)
        else:
            op.reason = pending
            self._set(op, BREAK, None)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def take_time(self, *, keep: bool = False) -> dict[tuple[str, str], float]:
        """Seconds each position spent in each state since the last take, up to now (with
        ``keep``: a look that leaves them to be taken)."""
        now = self.clock.now()
        out = dict(self._time)
        for op in self.ops:
            if now > op.counted_to:
                key = (op.position, op.counted_as or op.state)
                out[key] = out.get(key, 0.0) + now - op.counted_to
                if not keep:
                    op.counted_to = now
        if not keep:
            self._time.clear()
        return out

    def _set(self, op: Operator, state: str, call_id: str | None) -> None:
        now = self.clock.now()
        if op.state == TALKING:
            op.talk_s += now - op.since
        if now > op.counted_to:
            key = (op.position, op.counted_as or op.state)
            self._time[key] = self._time.get(key, 0.0) + now - op.counted_to
        op.counted_to = now
        op.state, op.call_id, op.since = state, call_id, now
        op.counted_as = DESK_GONE if state == NOT_READY and op.reason == DESK_GONE else state
        if state == TALKING:
            op.calls += 1
        self._notify()

    def _notify(self) -> None:
        for w in list(self._watchers):
            w()
        if self.on_change is not None:
            self.on_change()

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def snapshot(self) -> list[dict]:
        now = self.clock.now()
        return [{"name": o.name, "position": o.position, "state": o.state, "calls": o.calls,
                 "human": o.human, "since_s": round(max(0.0, now - o.since), 1),
                 "reason": o.reason if o.state in AWAY else "", "pending": o.pending,
                 "campaign": o.campaign, "team": o.team} for o in self.ops]


class CampaignFloor:
    """The floor as one campaign sees it: the operators it may use, the calls that are its own."""

    def __init__(self, pool: OperatorPool, campaign: int,
                 staffs: Callable[[Operator], bool] = lambda op: True) -> None:
        self.pool = pool
        self.campaign = campaign
        self.staffs = staffs  # replaced by the runner when the campaign's staff changes
        self.clock = pool.clock

    @property
    def ops(self) -> list[Operator]:
        return [o for o in self.pool.ops if self.staffs(o)]

    def free(self) -> list[Operator]:
        return [o for o in self.pool.free() if self.staffs(o)]

    def next_free(self, among: Callable[[Operator], bool] | None = None) -> Operator | None:
        return self.pool.next_free(self._among(among))

    def reserve(self, call_id: str, *, among: Callable[[Operator], bool] | None = None
                ) -> Operator | None:
        return self.pool.reserve(call_id, campaign=self.campaign, among=self._among(among))

    def _among(self, among: Callable[[Operator], bool] | None) -> Callable[[Operator], bool]:
        staffs = self.staffs
        return staffs if among is None else (lambda op: staffs(op) and among(op))

    def by_call(self, call_id: str) -> Operator | None:
        op = self.pool.by_call(call_id)
        return op if op is not None and op.campaign == self.campaign else None

    def release(self, op: Operator, *, talked: bool) -> None:
        self.pool.release(op, talked=talked)

    def talking(self, op: Operator) -> None:
        self.pool.talking(op)

    def watch(self, on_change: Callable[[], None],
              on_wrap_end: Callable[[Operator, float], None]) -> None:
        """Floor changes, and the ends of wrap-ups after this campaign's calls."""
        def mine(op: Operator, wrap_s: float, campaign: int | None) -> None:
            if campaign == self.campaign:
                on_wrap_end(op, wrap_s)
        self._hooks = (on_change, mine)
        self.pool.watch(on_change, mine)

    def unwatch(self) -> None:
        hooks = getattr(self, "_hooks", None)
        if hooks:
            self.pool.unwatch(*hooks)
