"""Operator states that match reality: breaks, desks that went away, wrap-up limits, one outcome."""
from __future__ import annotations

import asyncio

import pytest

from controller import campaigns
from controller.dialer import Dialer
from controller.operators import BREAK, DESK_GONE, FREE, NOT_READY, RESERVED, WRAP, OperatorPool
from controller.store import Store
from firmware.lineapi import CallProgress, CallReleased, CallStage, Outcome
from tests.test_dialer import FakeClock, FakeLines, at

NOON = at("2026-11-25T12:00:00+03:00")


def _setup(tmp_path, people=("olga", "ivan")):
    store = Store(tmp_path / "d.sqlite3")
    cfg = campaigns.create(store, "A", compliance="none", who="t", source="test")
    for i in range(6):
        store.upsert_account(cfg.id, {"account_id": f"A{i}"}, [(f"+7912345670{i}", "mobile")])
    clock = FakeClock(NOON)
    fl = FakeLines(["l0", "l1", "l2", "l3"])
    pool = OperatorPool(0, clock)  # type: ignore[arg-type]
    ops = [pool.login(name) for name in people]
    d = Dialer(store, fl, pool, clock, campaign_id=cfg.id,  # type: ignore[arg-type]
               campaign_name="A", compliance_profile="none")
    d.running = True
    return store, fl, pool, ops, d


async def test_break_when_idle_is_at_once_and_ready_ends_it(tmp_path):
    store, fl, pool, (olga, ivan), d = _setup(tmp_path)
    pool.set_ready(olga, True)
    pool.take_break(olga, "lunch")
    assert (olga.state, olga.reason) == (BREAK, "lunch")
    await d._cycle()
    assert fl.dials == []  # nobody ready: no call
    pool.set_ready(olga, True)
    await d._cycle()
    assert olga.state == RESERVED and len(fl.dials) == 1
    await pool.stop()
    store.close()


async def _talking(d, fl, pool, op) -> tuple[str, str]:
    """The operator gets a call and talks on it; (line, call id)."""
    pool.set_ready(op, True)
    await d._cycle()
    line, _, call_id = fl.dials[-1]
    fl.emit(CallProgress(line, call_id, CallStage.ANSWERED, 0))
    fl.emit(CallProgress(line, call_id, CallStage.BRIDGED, 0))
    return line, call_id


async def test_break_asked_while_talking_starts_after_the_call_and_its_wrap_up(tmp_path):
    store, fl, pool, (olga,), d = _setup(tmp_path, people=("olga",))
    line, call_id = await _talking(d, fl, pool, olga)
    pool.take_break(olga, "rest")
    assert olga.state == "talking" and olga.pending == "rest"
    fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 2.0, 30.0, 0))
    assert olga.state == WRAP and olga.call_id == call_id  # the outcome still belongs to her
    await d._cycle()
    assert len(fl.dials) == 1  # nothing reserved for her
    pool.finish_wrap(olga)
    assert (olga.state, olga.reason, olga.pending) == (BREAK, "rest", None)
    await d._cycle()
    assert len(fl.dials) == 1
    await pool.stop()
    store.close()


async def test_a_desk_gone_with_a_call_ringing_hands_the_call_to_someone_else(tmp_path):
    store, fl, pool, (olga, ivan), d = _setup(tmp_path)
    pool.set_ready(olga, True)
    await d._cycle()
    line, _, call_id = fl.dials[0]
    assert olga.call_id == call_id
    pool.set_ready(ivan, True)  # ready after the call was placed: free
    pool.desk_gone(olga)
    d.operator_gone(olga)
    assert (olga.state, olga.reason, olga.call_id) == (NOT_READY, DESK_GONE, None)
    assert ivan.call_id == call_id  # the reservation moved
    assert store.db.execute("SELECT operator FROM attempts WHERE call_id=?",
                            (call_id,)).fetchone()[0] == ivan.position
    fl.emit(CallProgress(line, call_id, CallStage.ANSWERED, 0))
    await asyncio.sleep(0)
    assert fl.bridges == [(call_id, ivan.position)]  # never to the empty desk
    # Olga comes back: nothing until she presses Ready.
    await d._cycle()
    assert olga.state == NOT_READY
    pool.set_ready(olga, True)
    assert olga.state == FREE
    await pool.stop()
    store.close()


async def test_a_desk_gone_with_nobody_else_free_lets_the_answer_wait_not_the_empty_desk(tmp_path):
    store, fl, pool, (olga, ivan), d = _setup(tmp_path)
    pool.set_ready(olga, True)
    await d._cycle()
    line, _, call_id = fl.dials[0]
    pool.desk_gone(olga)
    d.operator_gone(olga)
    fl.emit(CallProgress(line, call_id, CallStage.ANSWERED, 0))
    assert d._waiting == [call_id] and fl.bridges == []
    pool.set_ready(ivan, True)
    await d._cycle()
    await asyncio.sleep(0)
    assert fl.bridges == [(call_id, ivan.position)]
    await pool.stop()
    store.close()


async def test_wrap_up_limit_makes_the_operator_ready_or_paused_as_the_campaign_says(tmp_path):
    store, fl, pool, (olga, ivan), d = _setup(tmp_path)
    limits = {d.campaign_id: (5.0, "paused")}
    pool.wrap_limit = limits.get
    for op, after, state in ((olga, "paused", NOT_READY), (ivan, "ready", FREE)):
        limits[d.campaign_id] = (5.0, after)
        line, call_id = await _talking(d, fl, pool, op)
        fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 2.0, 30.0, 0))
        assert op.state == WRAP
        for _ in range(5):  # FakeClock.sleep passes the limit at once
            await asyncio.sleep(0)
        assert op.state == state, after
        if after == "paused":
            assert op.reason == "wrap_limit"
            pool.set_ready(op, False)  # stay out of the next test round
    await pool.stop()
    store.close()


async def test_an_outcome_saved_during_the_call_ends_the_wrap_up_with_the_call(tmp_path):
    store, fl, pool, (olga,), d = _setup(tmp_path, people=("olga",))
    line, call_id = await _talking(d, fl, pool, olga)
    olga.outcome_saved = call_id  # what the desk does when the outcome is saved while talking
    fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 2.0, 30.0, 0))
    assert olga.state == FREE and olga.outcome_saved is None
    await pool.stop()
    store.close()


# --- the desk's WebSocket is the operator's presence -------------------------------------------
from tests.test_web import as_role, client, fake, people_db, store  # noqa: E402,F401


async def test_closing_the_desk_page_makes_the_operator_not_ready(client, store, fake):
    as_role(client, store, "operator")
    origin = str(client.make_url("/"))[:-1]
    ws = await client.ws_connect("/desk/ws", headers={"Origin": origin})
    await ws.receive_json(timeout=5)
    fake.operators["olga"]["state"] = "free"
    second = await client.ws_connect("/desk/ws", headers={"Origin": origin})  # another tab
    await second.receive_json(timeout=5)
    await ws.close()
    await asyncio.sleep(0.3)
    assert ("desk_presence", "olga", False) not in fake.calls  # one desk page still open
    await second.close()
    for _ in range(50):
        if ("desk_presence", "olga", False) in fake.calls:
            break
        await asyncio.sleep(0.05)
    assert fake.operators["olga"]["state"] == "not_ready"
    assert fake.operators["olga"]["reason"] == "desk_gone"


async def test_a_silent_desk_page_counts_as_gone(client, store, fake, monkeypatch):
    from web_admin import desk
    monkeypatch.setattr(desk, "GONE_AFTER_S", 0.5)
    as_role(client, store, "operator")
    ws = await client.ws_connect("/desk/ws", headers={"Origin": str(client.make_url("/"))[:-1]})
    await ws.receive_json(timeout=5)
    for _ in range(3):  # heartbeats keep it open
        await ws.send_str("hb")
        await asyncio.sleep(0.3)
    assert ("desk_presence", "olga", False) not in fake.calls
    msg = await ws.receive(timeout=5)  # silence: the box closes the feed
    assert msg.type.name in ("CLOSE", "CLOSED")
    await asyncio.sleep(0.1)
    assert ("desk_presence", "olga", False) in fake.calls


async def test_break_needs_a_known_reason(client, store, fake):
    csrf = as_role(client, store, "operator")
    h = {"X-CSRF-Token": csrf}
    r = await client.post("/desk/break", json={"reason": "x"}, headers=h)
    assert r.status == 400
    r = await client.post("/desk/break", json={"reason": "lunch"}, headers=h)
    assert r.status == 200
    assert (await r.json())["desk"]["operator"]["state"] == "break"


# --- the same on the simulated box --------------------------------------------------------------
async def _talking_on_the_box(app, username: str) -> str:
    """The person presses Ready and talks on the box's next call; its call id."""
    await app.desk_ready(username, True)
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while (app.desk(username)["call"] or {}).get("stage") != "bridged":
        assert loop.time() < end, app.desk(username)
        await asyncio.sleep(0.05)
    return app.desk(username)["call"]["call_id"]


@pytest.mark.slow
async def test_one_outcome_per_call_and_no_phantom_operator_on_the_box(tmp_path):
    from controller import users
    from dialbox.appliance import Appliance, Settings
    from firmware.errors import InputError
    app = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                             seed=21, compliance="none"))
    await app.start()
    try:
        users.add(app.store, "olga", "olga-password-1", role="operator")
        assert app.desk("admin")["operator"]["state"] == "not_ready"
        await app.desk_ready("admin", False)  # looking, not working
        assert app.operators.ops == [] and app.status()["operators"] == []
        call_id = await _talking_on_the_box(app, "olga")
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        await app.desk_disposition("olga", call_id, "rpc", {})  # during the conversation
        with pytest.raises(InputError, match="saved already"):
            await app.desk_disposition("olga", call_id, "refusal", {})
        await app.desk_break("olga", "lunch")  # after this call: no next one is reserved
        while app.desk("olga")["operator"]["state"] == "talking":
            assert loop.time() < end + 60
            await asyncio.sleep(0.05)
        op = app.desk("olga")["operator"]
        assert (op["state"], op["reason"]) == ("break", "lunch")  # no wrap-up after the call
        rows = app.store.db.execute("SELECT kind FROM dispositions WHERE call_id=?",
                                    (call_id,)).fetchall()
        assert [r[0] for r in rows] == ["rpc"]
        placed = app.store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        await asyncio.sleep(2)
        assert app.store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == placed
        assert [o["name"] for o in app.status()["operators"]] == ["olga"]
    finally:
        await app.stop()


@pytest.mark.slow
async def test_a_wrap_up_that_times_out_gives_the_call_its_one_outcome_no_outcome(tmp_path):
    from controller import audit, reports, users
    from dialbox.appliance import DEMO_CAMPAIGN, Appliance, Settings
    from firmware.errors import InputError
    app = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                             seed=22, compliance="none"))
    await app.start()
    try:
        campaigns.update(app.store, DEMO_CAMPAIGN, who="t", source="test", wrap_limit_s=20.0,
                         wrap_after="paused")
        await app.runner.reconcile()
        users.add(app.store, "olga", "olga-password-1", role="operator")
        call_id = await _talking_on_the_box(app, "olga")
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        await app.desk_hangup("olga", call_id)  # the call ends; she chooses nothing
        while app.desk("olga")["operator"]["state"] == "talking":
            assert loop.time() < end
            await asyncio.sleep(0.05)
        assert app.desk("olga")["operator"]["state"] == "wrap_up"
        while app.desk("olga")["operator"]["state"] == "wrap_up":  # 20 s of box time
            assert loop.time() < end
            await asyncio.sleep(0.05)
        op = app.desk("olga")["operator"]
        assert (op["state"], op["reason"]) == ("not_ready", "wrap_limit")  # paused, as set
        await app.store.writer.drain()  # written on the store's writer thread
        kinds = [r[0] for r in app.store.db.execute(
            "SELECT kind FROM dispositions WHERE call_id=?", (call_id,))]
        assert kinds == ["no_outcome"]
        # Too late for her outcome: the call keeps its one.
        with pytest.raises(InputError):
            await app.desk_disposition("olga", call_id, "rpc", {})
        assert app.store.db.execute("SELECT COUNT(*) FROM dispositions WHERE call_id=?",
                                    (call_id,)).fetchone()[0] == 1
        [entry] = audit.entries(app.store, obj="call", key=call_id)
        assert (entry["action"], entry["who"], entry["source"]) == \
            ("no_outcome", "olga", "wrap_limit")
        wrap_s = app.store.db.execute("SELECT wrap_s FROM attempts WHERE call_id=?",
                                      (call_id,)).fetchone()[0]
        assert 19.0 <= wrap_s <= 30.0
        now = app.clock.wall()
        [row] = [r for r in reports.operators(app.store, since=now - 3600, until=now + 1)
                 if r["operator"] == "olga"]
        assert (row["calls"], row["no_outcome"]) == (1, 1)
    finally:
        await app.stop()
