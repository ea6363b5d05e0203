"""Discrete-event simulation of a collection floor that runs a real pacer in simulated time.

Leads are dialed in order and each lead's fate is drawn from its own slice of one random
stream, so every pacer meets the same debtors for the same seed (common random numbers). An
answered call takes a free operator at once, or waits up to the grace period (2 s) and is
abandoned if none frees up. Lines are held from launch to hang-up.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import asdict, dataclass

from controller.pacing.interface import FloorSnapshot, PacerBase
from controller.pacing.scenario import Scenario
from firmware.durations import lognormal

ANSWER, FAIL, TALK_END, WRAP_END, ABANDON, TICK = range(6)
FATE_ANSWER, FATE_BUSY, FATE_UNREACHABLE, FATE_NO_ANSWER = range(4)


@dataclass
class SimResult:
    """What a shift produced; rates are shares, times in seconds or minutes as named."""

    pacing: str
    calls: int
    live_answers: int
    abandoned: int
    abandon_rate: float
    agent_occupancy: float
    talk_min_per_agent_hour: float
    connects_per_agent_hour: float
    mean_agent_wait_s: float
    worst_day_abandon_rate: float

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


class FloorSimulation:
    """One run of one pacer on one scenario."""

    def __init__(self, scenario: Scenario, pacer: PacerBase, seed: int | None = None,
                 grace_s: float = 2.0, tick_s: float = 1.0) -> None:
        self.scenario = scenario
        self.pacer = pacer
        self.grace_s = grace_s
        self.tick_s = tick_s
        self._rng = random.Random(scenario.seed if seed is None else seed)
        self._leads: list = []  # (u, tta, talk, wrap, busy, unreachable) per lead, in order
        self.next_lead = 0
        self.now = 0.0
        self._heap: list = []
        self._seq = 0
        n = scenario.operators
        self.free_ops: list = list(range(n))
        self.free_since = [0.0] * n
        self.talking: dict = {}  # operator -> talk start
        self.wrapping: dict = {}  # operator -> wrap start
        self.op_call: dict = {}  # operator -> lead index of the call it serves
        self.ringing: dict = {}  # lead index -> launch time
        self.fates: dict = {}  # lead index -> (fate, resolve delay) while ringing
        self.waiting: dict = {}  # lead index -> answer time, in answer order
        self.lines_busy = 0
        self.calls = 0
        self.live = 0
        self.abandoned = 0
        self.connects = 0
        self.talk_total = 0.0
        self.wrap_total = 0.0
        self.idle_before_connect = 0.0
        self.by_day: dict = {}

    # -- leads and fates -------------------------------------------------------------------
    def lead(self, k: int) -> tuple:
        """Draws of lead ``k`` (generated lazily, in order)."""
        sc = self.scenario
        rng = self._rng
        while len(self._leads) <= k:
            u = rng.random()
            tta = min(max(lognormal(rng, sc.time_to_answer_s.mean, sc.time_to_answer_s.sd), 1.0),
                      sc.no_answer_timeout_s - 0.5)
            talk = max(1.0, lognormal(rng, sc.talk_s.mean, sc.talk_s.sd))
            wrap = max(0.5, lognormal(rng, sc.wrap_s.mean, sc.wrap_s.sd))
            busy = min(max(lognormal(rng, sc.busy_s.mean, sc.busy_s.sd), 0.5),
                       sc.no_answer_timeout_s - 1.0)
            unr = min(max(lognormal(rng, sc.unreachable_s.mean, sc.unreachable_s.sd), 0.5),
                      sc.no_answer_timeout_s - 1.0)
            self._leads.append((u, tta, talk, wrap, busy, unr))
        return self._leads[k]

    def fate(self, k: int, launch_s: float) -> tuple:
        """(fate, seconds to resolution) of lead ``k`` if launched at ``launch_s``."""
        sc = self.scenario
        u, tta, _talk, _wrap, busy, unr = self.lead(k)
        edge = sc.answer_prob_at(launch_s)
        if u < edge:
            return FATE_ANSWER, tta
        edge += sc.busy_prob
        if u < edge:
            return FATE_BUSY, busy
        edge += sc.unreachable_prob
        if u < edge:
            return FATE_UNREACHABLE, unr
        return FATE_NO_ANSWER, sc.no_answer_timeout_s

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> SimResult:
        """Simulate the whole shift and return its figures."""
        end = self.scenario.duration_s
        self._push(0.0, TICK, None)
        heap = self._heap
        while heap:
            t, _, kind, payload = heapq.heappop(heap)
            if t > end:
                break
            self.now = t
            if kind == TICK:
                self._push(t + self.tick_s, TICK, None)
            elif kind == ANSWER:
                self._on_answer(payload)
            elif kind == FAIL:
                self._on_fail(payload)
            elif kind == TALK_END:
                self._on_talk_end(payload)
            elif kind == WRAP_END:
                self._on_wrap_end(payload)
            else:
                self._on_abandon(payload)
            self._decide()
        return self._result(end)

    def snapshot(self) -> FloorSnapshot:
        """The floor as a pacer sees it now."""
        now = self.now
        return FloorSnapshot(
            operators=self.scenario.operators, free=len(self.free_ops),
            talk_elapsed=[now - s for s in self.talking.values()],
            wrap_elapsed=[now - s for s in self.wrapping.values()],
            ring_elapsed=[now - s for s in self.ringing.values()],
            waiting=len(self.waiting), lines_free=self.scenario.lines - self.lines_busy,
            clairvoyant=self)

    def _decide(self) -> None:
        decision = self.pacer.decide(self.snapshot(), self.now)
        n = min(decision.n_calls, self.scenario.lines - self.lines_busy)
        if n <= 0:
            return
        now = self.now
        for _ in range(n):
            k = self.next_lead
            self.next_lead += 1
            fate, delay = self.fate(k, now)
            self.ringing[k] = now
            self.fates[k] = (fate, delay)
            self._push(now + delay, ANSWER if fate == FATE_ANSWER else FAIL, k)
        self.lines_busy += n
        self.calls += n
        self.pacer.observe_launched(now, n)

    def _push(self, t: float, kind: int, payload) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, payload))

    def _day(self, t: float) -> list:
        day = int(t // 86400.0)
        rec = self.by_day.get(day)
        if rec is None:
            rec = self.by_day[day] = [0, 0]
        return rec

    def _on_answer(self, k: int) -> None:
        now = self.now
        launched = self.ringing.pop(k)
        del self.fates[k]
        self.live += 1
        self._day(now)[0] += 1
        self.pacer.observe_answered(now - launched, now)
        if self.free_ops:
            self._connect(self.free_ops.pop(), k)
        else:
            self.waiting[k] = now
            self._push(now + self.grace_s, ABANDON, k)

    def _connect(self, op: int, k: int) -> None:
        now = self.now
        self.idle_before_connect += now - self.free_since[op]
        self.connects += 1
        self.talking[op] = now
        self.op_call[op] = k
        self._push(now + self.lead(k)[2], TALK_END, op)

    def _on_fail(self, k: int) -> None:
        launched = self.ringing.pop(k)
        del self.fates[k]
        self.lines_busy -= 1
        self.pacer.observe_not_answered(self.now - launched)

    def _on_talk_end(self, op: int) -> None:
        now = self.now
        talk = now - self.talking.pop(op)
        self.talk_total += talk
        self.lines_busy -= 1
        self.pacer.observe_talk_end(talk)
        self.wrapping[op] = now
        self._push(now + self.lead(self.op_call[op])[3], WRAP_END, op)

    def _on_wrap_end(self, op: int) -> None:
        now = self.now
        wrap = now - self.wrapping.pop(op)
        self.wrap_total += wrap
        self.pacer.observe_wrap_end(wrap)
        self.free_since[op] = now
        if self.waiting:
            k = next(iter(self.waiting))
            del self.waiting[k]
            self._connect(op, k)
        else:
            self.free_ops.append(op)

    def _on_abandon(self, k: int) -> None:
        if self.waiting.pop(k, None) is None:
            return  # an operator took it in time
        self.abandoned += 1
        self._day(self.now)[1] += 1
        self.lines_busy -= 1
        self.pacer.observe_abandon(self.now)

    def _result(self, end: float) -> SimResult:
        talk = self.talk_total + sum(end - s for s in self.talking.values())
        wrap = self.wrap_total + sum(end - s for s in self.wrapping.values())
        agent_hours = self.scenario.operators * end / 3600.0
        worst = max((ab / live if live else 0.0) for live, ab in self.by_day.values()) \
            if self.by_day else 0.0
        return SimResult(
            pacing=self.pacer.name, calls=self.calls, live_answers=self.live,
            abandoned=self.abandoned,
            abandon_rate=self.abandoned / self.live if self.live else 0.0,
            agent_occupancy=(talk + wrap) / (self.scenario.operators * end),
            talk_min_per_agent_hour=talk / 60.0 / agent_hours,
            connects_per_agent_hour=self.connects / agent_hours,
            mean_agent_wait_s=self.idle_before_connect / self.connects if self.connects else 0.0,
            worst_day_abandon_rate=worst)
