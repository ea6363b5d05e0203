"""The dialer over a fake Line API: progressive pacing, operator hand-off, the law before each dial."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from controller.dialer import Dialer
from controller.operators import OperatorPool
from controller.store import Store
from firmware.lineapi import CallProgress, CallReleased, CallStage, LineInfo, Outcome


class FakeClock:
    scale = 1.0

    def __init__(self, wall: float) -> None:
        self._wall = wall

    def set(self, wall: float) -> None:
        self._wall = wall

    def now(self) -> float:
        return self._wall

    def wall(self) -> float:
        return self._wall

    async def sleep(self, s: float) -> None:
        await asyncio.sleep(0)


class FakeLines:
    """Line API stand-in: records dials and lets the test play the network."""

    def __init__(self, names):
        self.names = list(names)
        self.busy: dict[str, str] = {}
        self.dials: list[tuple[str, str, str]] = []
        self.bridges: list[tuple[str, str]] = []
        self.answers: list[str] = []
        self.hangups: list[tuple[str, int]] = []
        self.sinks = []
        self.unnumbered: set[str] = set()
        self.ring_s = 40.0  # GSM lines
        self.min_ring: list[float] = []
        self.tags: dict[str, dict] = {}  # call id -> log fields given

    def tag(self, call_id, **fields):
        self.tags.setdefault(call_id, {}).update(fields)

    def subscribe(self, sink):
        self.sinks.append(sink)

    def free_lines(self):
        return [n for n in self.names if n not in self.busy]

    def lines(self):
        # Each line's official number is known unless the test took it away.
        return [LineInfo(n, "gsm", "idle", True, details={"number": f"+7999000000{i}"})
                for i, n in enumerate(self.names) if n not in self.unnumbered]

    def ring_timeout_s(self, line):
        return self.ring_s

    async def dial(self, line, number, *, call_id, min_ring_s=0.0, tags=None):
        self.tags[call_id] = dict(tags or {})
        self.busy[line] = call_id
        self.dials.append((line, number, call_id))
        self.min_ring.append(min_ring_s)

    async def bridge(self, call_id, position):
        self.bridges.append((call_id, position))

    async def answer(self, call_id):
        self.answers.append(call_id)

    async def hangup(self, call_id, cause=16):
        self.hangups.append((call_id, cause))

    def emit(self, ev):
        if isinstance(ev, CallReleased):
            self.busy.pop(ev.line, None)
        for s in self.sinks:
            s(ev)


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "d.sqlite3", FakeClock(at("2026-11-25T12:00:00+03:00")))
    cid = s.campaign("c", create=True)
    for i in range(5):
        s.upsert_account(cid, {"account_id": f"A{i}", "tz": "Europe/Moscow"},
                         [(f"+7912345670{i}", "mobile")])
    yield s
    s.close()


async def make(store, wall, *, operators=2, lines=4, profile="ru-230fz"):
    clock = store.clock  # one clock: the store stamps what the dialer decides
    clock.set(wall)
    fl = FakeLines([f"l{i}" for i in range(lines)])
    ops = OperatorPool(operators, clock)  # type: ignore[arg-type]
    d = Dialer(store, fl, ops, clock, campaign_id=1, campaign_name="c",  # type: ignore[arg-type]
               compliance_profile=profile)
    d.running = True  # as after start(), without the background loop
    return d, fl, ops


async def test_progressive_places_one_call_per_free_operator(store):
    d, fl, ops = await make(store, at("2026-11-25T12:00:00+03:00"))
    await d._cycle()
    assert len(fl.dials) == 2  # two operators, four lines: two calls
    line, number, call_id = fl.dials[0]
    fl.emit(CallProgress(line, call_id, CallStage.ANSWERED, 0))
    await asyncio.sleep(0)
    assert fl.bridges == [(call_id, ops.by_call(call_id).position)]
    fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 3.0, 20.0, 0))
    row = store.db.execute("SELECT outcome, talk_s FROM attempts WHERE call_id=?",
                           (call_id,)).fetchone()
    assert tuple(row) == ("answered", 20.0)
    await ops.stop()


async def test_night_in_moscow_holds_every_lead_with_reason_and_time(store):
    d, fl, ops = await make(store, at("2026-11-25T03:30:00+03:00"))
    await d._cycle()
    assert fl.dials == []
    rows = store.db.execute("SELECT code, detail FROM decisions").fetchall()
    assert len(rows) == 5 and all(r["code"] == "outside_hours" for r in rows)
    due = store.db.execute("SELECT MIN(next_due_at) FROM accounts").fetchone()[0]
    assert due == at("2026-11-25T08:00:00+03:00")
    await ops.stop()


async def test_second_conversation_the_same_day_is_refused(store):
    d, fl, ops = await make(store, at("2026-11-25T12:00:00+03:00"), operators=1)
    await d._cycle()
    line, number, call_id = fl.dials[0]
    fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 3.0, 20.0, 0))
    # Bring the same debtor due again (a callback, say): the law says not today.
    store.db.execute("UPDATE accounts SET status='active', next_due_at=0 WHERE account_id='A0'")
    store.db.execute("UPDATE accounts SET status='done' WHERE account_id!='A0'")
    for _ in range(3):  # the operator's wrap-up finishes
        await asyncio.sleep(0)
    assert ops.free()
    await d._cycle()
    assert len(fl.dials) == 1
    code = store.db.execute("SELECT code FROM decisions ORDER BY id DESC").fetchone()[0]
    assert code == "daily_limit"
    await ops.stop()


async def test_none_profile_dials_at_night_only_by_explicit_choice(store):
    d, fl, ops = await make(store, at("2026-11-25T03:30:00+03:00"), profile="none")
    await d._cycle()
    assert len(fl.dials) == 2
    await ops.stop()


async def test_predictive_hands_a_waiting_answer_to_the_next_free_operator(store):
    d, fl, ops = await make(store, at("2026-11-25T12:00:00+03:00"), operators=1, lines=4)
    d.mode = "predictive"
    await d._launch("l0", await d._next_allowed_lead(None), reserve=False)
    await d._launch("l1", await d._next_allowed_lead(None), reserve=False)
    (l0, _, c0), (l1, _, c1) = fl.dials
    d.operators.reserve(c0)  # the only operator takes the first answer
    fl.emit(CallProgress(l0, c0, CallStage.ANSWERED, 0))
    fl.emit(CallProgress(l1, c1, CallStage.ANSWERED, 0))
    assert d._waiting == [c1]  # nobody free for the second: it waits inside the deadline
    fl.emit(CallReleased(l0, c0, Outcome.ANSWERED, 16, "normal", 1.0, 0.0, 0))  # no talk
    assert d._wake.is_set()  # the loop is woken to hand the waiting answer over
    d._hand_waiting()
    await asyncio.sleep(0)
    assert d._waiting == [] and fl.bridges[-1][0] == c1
    assert store.db.execute("SELECT operator FROM attempts WHERE call_id=?",
                            (c1,)).fetchone()[0] == ops.ops[0].position
    await ops.stop()
    await d.stop()


async def test_abandoned_answer_is_recorded_and_counted_by_the_pacer(store):
    d, fl, ops = await make(store, at("2026-11-25T12:00:00+03:00"), operators=1, lines=4)
    await d._launch("l0", await d._next_allowed_lead(None), reserve=False)
    line, _, cid = fl.dials[0]
    ops.reserve("someone-else")
    fl.emit(CallProgress(line, cid, CallStage.ANSWERED, 0))
    fl.emit(CallReleased(line, cid, Outcome.ANSWERED, 16, "abandoned", 1.0, 2.0, 0,
                         abandoned=True))
    row = store.db.execute("SELECT abandoned FROM attempts WHERE call_id=?", (cid,)).fetchone()
    assert row[0] == 1
    assert d.pacer.window.abandoned == 1 and d.pacer.window.live == 1
    await ops.stop()


async def test_blocked_caller_gets_busy_and_others_go_first_to_an_operator(store):
    from firmware.lineapi import InboundCall
    store.block_caller("+79990001122", "abusive", "supervisor")
    d, fl, ops = await make(store, at("2026-11-25T12:00:00+03:00"), operators=1, lines=4)
    fl.emit(InboundCall("l3", "in-1", "+79990001122", 0))
    await asyncio.sleep(0)
    assert fl.hangups == [("in-1", 17)]
    fl.emit(InboundCall("l3", "in-2", "+79161234567", 0))
    await d._cycle()
    assert fl.answers == ["in-2"] and fl.dials == []  # the caller first, no outbound call
    await ops.stop()
    await d.stop()


async def test_a_sim_over_its_calls_per_day_is_not_used(store):
    from firmware.lineapi import LineInfo
    d, fl, ops = await make(store, at("2026-11-25T23:59:00+00:00"), operators=3, lines=2,
                            profile="none")
    fl.lines = lambda: [LineInfo(n, "gsm", "idle", True, details={"calls_per_day": 1})
                        for n in fl.names]
    await d._cycle()
    assert sorted(x[0] for x in fl.dials) == ["l0", "l1"]
    for line, _, cid in list(fl.dials):
        fl.emit(CallReleased(line, cid, Outcome.BUSY, 17, "busy", 1.0, 0.0, 0))
    await d._cycle()
    assert len(fl.dials) == 2  # each SIM made its one call today
    await ops.stop()


async def test_blended_reserve_keeps_operators_free_for_inbound(store):
    d, fl, ops = await make(store, at("2026-11-25T12:00:00+03:00"), operators=3, lines=4)
    d.reserve_inbound = 1
    await d._cycle()
    assert len(fl.dials) == 2 and len(ops.free()) == 1  # one kept for a debtor calling back
    from firmware.lineapi import InboundCall
    fl.emit(InboundCall("l3", "in-9", "+79161234567", 0))
    await d._cycle()
    assert fl.answers == ["in-9"]
    await ops.stop()
    await d.stop()


async def test_each_segment_dials_in_its_own_mode(store):
    from controller.segments import Segment, Strategy
    store.db.execute("UPDATE accounts SET region='VIP' WHERE account_id IN ('A0', 'A1')")
    store.set_segments(1, [Segment("vip", {"region": ["VIP"]}, Strategy(mode="preview",
                                                                          priority=10)),
                           Segment("rest", {}, Strategy())])
    d, fl, ops = await make(store, at("2026-11-25T12:00:00+03:00"), operators=3, lines=4)
    await d._cycle()
    previewed = sorted(lead.account_id for lead, _ in d.previews.values())
    assert previewed == ["A0", "A1"]  # the preview segment's cards wait for their operators
    assert len(fl.dials) == 1  # the third operator dials the rest progressively
    assert d.mode_of(d.previews[next(iter(d.previews))][0]) == "preview"
    await ops.stop()
    await d.stop()


@pytest.mark.parametrize("profile,dials", [("ru-230fz", 0), ("us-regf", 1), ("none", 1)])
async def test_a_line_without_a_known_number_does_not_dial_under_ru_230fz(store, profile, dials):
    d, fl, ops = await make(store, at("2026-11-25T12:00:00+03:00"), operators=1, lines=2,
                            profile=profile)
    fl.unnumbered = {"l0", "l1"}  # neither declared in the profile nor learnt from the SIM
    await d._cycle()
    assert len(fl.dials) == dials
    fl.unnumbered = {"l0"}
    await d._cycle()
    assert [line for line, _, _ in fl.dials][dials:] == (["l1"] if profile == "ru-230fz" else [])
    await ops.stop()
