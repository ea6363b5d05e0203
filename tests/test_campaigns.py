"""Many campaigns on one floor: staff, line groups, weights, pause; the `dialbox campaign` CLI."""
from __future__ import annotations

import asyncio
import json
import sys

import pytest

from controller import audit, campaigns
from controller.campaign_runner import CampaignRunner
from controller.operators import OperatorPool
from controller.store import Store
from firmware.errors import UserError
from firmware.lineapi import CallProgress, CallReleased, CallStage, InboundCall, Outcome
from tests.test_dialer import FakeClock, FakeLines, at

NOON = at("2026-11-25T12:00:00+03:00")


def _store(tmp_path, **kw) -> Store:
    s = Store(tmp_path / "d.sqlite3")
    for name, creditor, mode, n in (("A", "Банк-1", "progressive", 6),
                                    ("B", "Банк-2", "progressive", 6)):
        cfg = campaigns.create(s, name, creditor=creditor, mode=mode, compliance="none",
                               who="t", source="test")
        for i in range(n):
            s.upsert_account(cfg.id, {"account_id": f"{name}{i}", "tz": "Europe/Moscow"},
                             [(f"+791234{ord(name):03d}{i:02d}", "mobile")])
    return s


async def _runner(store, *, operators=4, lines=6):
    clock = FakeClock(NOON)
    fl = FakeLines([f"l{i}" for i in range(lines)])
    pool = OperatorPool(operators, clock)  # type: ignore[arg-type]
    r = CampaignRunner(store, fl, pool, clock)  # type: ignore[arg-type]
    return r, fl, pool


async def _turn(r: CampaignRunner) -> None:
    """One pass of the runner's loop, in the test's own time."""
    await r.reconcile()
    for d in list(r.dialers.values()):
        await d.serve()
    await r._turns()


def _calls(store, fl) -> dict[str, tuple[str, str, str]]:
    """call id -> (campaign, line, operator) of every call placed."""
    out = {}
    for line, _, call_id in fl.dials:
        row = store.db.execute("SELECT c.name, a.operator FROM attempts a JOIN campaigns c ON "
                               "c.id=a.campaign_id WHERE a.call_id=?", (call_id,)).fetchone()
        out[call_id] = (row[0], line, row[1])
    return out


async def test_operators_get_only_their_campaigns_calls_and_lines_stay_in_their_group(tmp_path):
    store = _store(tmp_path)
    campaigns.update(store, "A", who="t", source="test", operators=["pos1", "pos2"],
                     line_group=["l0", "l1", "l2"])
    campaigns.update(store, "B", who="t", source="test", operators=["pos3", "pos4"])
    for name in "AB":
        campaigns.act(store, name, "start", who="t", source="test")
    r, fl, pool = await _runner(store)
    await _turn(r)
    calls = _calls(store, fl)
    assert sorted(c for c, _, _ in calls.values()) == ["A", "A", "B", "B"]
    for campaign, line, op in calls.values():
        assert op in ({"pos1", "pos2"} if campaign == "A" else {"pos3", "pos4"})
        if campaign == "A":
            assert line in ("l0", "l1", "l2")
    # Each dialer handles its own calls' events only: every call released once, by its owner.
    for call_id, (campaign, line, op) in calls.items():
        fl.emit(CallProgress(line, call_id, CallStage.ANSWERED, 0))
        fl.emit(CallProgress(line, call_id, CallStage.BRIDGED, 0))
        fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 2.0, 10.0, 0))
    rows = store.db.execute("SELECT state, talk_s FROM attempts").fetchall()
    assert [tuple(x) for x in rows] == [("done", 10.0)] * 4
    assert sum(o.calls for o in pool.ops) == 4
    await r.stop()
    await pool.stop()
    store.close()


async def test_pausing_one_campaign_leaves_the_other_dialing(tmp_path):
    store = _store(tmp_path)
    for name in "AB":
        campaigns.act(store, name, "start", who="t", source="test")
    r, fl, pool = await _runner(store, operators=2)
    await _turn(r)
    first = _calls(store, fl)
    assert sorted(c for c, _, _ in first.values()) == ["A", "B"]  # equal weights: one each
    campaigns.act(store, "A", "pause", who="t", source="test")
    await _turn(r)
    a_call = next(cid for cid, (c, _, _) in first.items() if c == "A")
    assert r.dialers[store.campaign("A")].running is False
    assert store.campaign("A") in r.dialers  # kept until its call ends
    for call_id, (_, line, _) in first.items():
        fl.emit(CallReleased(line, call_id, Outcome.NO_ANSWER, 19, "no answer", 30.0, 0.0, 0))
    await _turn(r)
    after = _calls(store, fl)
    new = [c for cid, (c, _, _) in after.items() if cid not in first]
    assert new == ["B", "B"]  # both operators now work B
    assert store.campaign("A") not in r.dialers  # drained and let go
    assert store.db.execute("SELECT state FROM attempts WHERE call_id=?",
                            (a_call,)).fetchone()[0] == "done"  # the paused call's real end
    await r.stop()
    await pool.stop()
    store.close()


async def test_lines_go_by_weight_when_operators_are_shared(tmp_path):
    store = _store(tmp_path)
    campaigns.update(store, "A", who="t", source="test", weight=2)
    for name in "AB":
        campaigns.act(store, name, "start", who="t", source="test")
    r, fl, pool = await _runner(store, operators=6, lines=6)
    await _turn(r)
    placed = [c for c, _, _ in _calls(store, fl).values()]
    assert placed.count("A") == 4 and placed.count("B") == 2
    await r.stop()
    await pool.stop()
    store.close()


async def test_a_change_in_the_store_reaches_the_runner_by_polling(tmp_path):
    store = _store(tmp_path)
    r, fl, pool = await _runner(store, operators=2)
    r.poll_s = 0.05
    await r.start()
    await asyncio.sleep(0.3)
    assert fl.dials == [] and r.dialers == {}  # drafts: nothing dials
    other = Store(tmp_path / "d.sqlite3")  # as the CLI would, another connection
    campaigns.act(other, "B", "start", who="t", source="cli")
    other.close()
    for _ in range(100):
        if fl.dials:
            break
        await asyncio.sleep(0.05)
    assert {c for c, _, _ in _calls(store, fl).values()} == {"B"}
    await r.stop()
    await pool.stop()
    store.close()


async def test_schedule_outside_its_hours_keeps_a_running_campaign_from_dialing(tmp_path):
    store = _store(tmp_path)
    # NOON is a Wednesday, 12:00 in Moscow.
    campaigns.update(store, "A", who="t", source="test",
                     schedule=campaigns.Schedule.parse("mon-fri", "14:00-18:00", None))
    campaigns.update(store, "B", who="t", source="test",
                     schedule=campaigns.Schedule.parse("wed", "09:00-13:00", None))
    for name in "AB":
        campaigns.act(store, name, "start", who="t", source="test")
    r, fl, pool = await _runner(store, operators=2)
    await _turn(r)
    assert {c for c, _, _ in _calls(store, fl).values()} == {"B"}
    await r.stop()
    await pool.stop()
    store.close()


async def test_inbound_goes_to_the_campaign_of_the_callers_account(tmp_path):
    store = _store(tmp_path)
    campaigns.update(store, "A", who="t", source="test", operators=["pos1"])
    campaigns.update(store, "B", who="t", source="test", operators=["pos2"])
    for name in "AB":
        campaigns.act(store, name, "start", who="t", source="test")
    store.db.execute("UPDATE accounts SET status='done'")  # nothing to dial out
    r, fl, pool = await _runner(store, operators=2)
    await _turn(r)
    caller = store.db.execute("SELECT e164 FROM phones p JOIN accounts a ON a.id=p.account_pk "
                              "WHERE a.account_id='B3'").fetchone()[0]
    fl.emit(InboundCall("l5", "in-1", caller, 0))
    await _turn(r)
    assert fl.answers == ["in-1"]
    assert pool.by_call("in-1").position == "pos2"
    await r.stop()
    await pool.stop()
    store.close()


def test_status_changes_are_checked_and_audited(tmp_path):
    store = _store(tmp_path)
    with pytest.raises(UserError, match="only a running campaign can be paused"):
        campaigns.act(store, "A", "pause", who="anna", source="cli")
    campaigns.act(store, "A", "start", who="anna", source="cli")
    with pytest.raises(UserError, match="stop the campaign before archiving"):
        campaigns.act(store, "A", "archive", who="anna", source="cli")
    campaigns.act(store, "A", "stop", who="anna", source="cli")
    campaigns.act(store, "A", "archive", who="anna", source="cli")
    with pytest.raises(UserError, match="unarchive it first"):
        campaigns.act(store, "A", "start", who="anna", source="cli")
    log = [(e["action"], e["before"], e["after"]) for e in
           audit.entries(store, obj="campaign", key="A")][::-1]
    assert log[0][0] == "create"
    assert log[1:] == [("start", {"status": "draft"}, {"status": "running"}),
                       ("stop", {"status": "running"}, {"status": "stopped"}),
                       ("archive", {"status": "stopped"}, {"status": "archived"})]
    with pytest.raises(UserError, match="weight"):
        campaigns.update(store, "B", who="anna", source="cli", weight=0)
    with pytest.raises(UserError, match="hours"):
        campaigns.Schedule.parse("mon", "20:00-09:00", None)
    with pytest.raises(UserError, match="exists already"):
        campaigns.create(store, "B", who="anna", source="cli")
    store.close()


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_campaign_cli_creates_lists_edits_and_starts(tmp_path):
    data = str(tmp_path / "d")
    code, out, err = await run_cli("campaign", "create", "Банк-Ноябрь", "--creditor", "Банк",
                                   "--mode", "predictive", "--compliance", "us-regf",
                                   "--data", data)
    assert code == 0, err
    code, out, err = await run_cli("campaign", "set", "Банк-Ноябрь", "--weight", "3",
                                   "--days", "mon-fri", "--hours", "10:00-19:00",
                                   "--lines", "gsm*", "--operators", "olga,pos1",
                                   "--teams", "soft", "--wrap-limit", "60",
                                   "--after-wrap", "paused", "--take-time", "25", "--data", data)
    assert code == 0, err
    code, out, err = await run_cli("campaign", "set", "Банк-Ноябрь", "--take-time", "3",
                                   "--data", data)
    assert code == 1 and "take_s: a call rings on an operator's desk 5 to 120 seconds" in err
    code, out, err = await run_cli("campaign", "start", "Банк-Ноябрь", "--data", data)
    assert code == 1 and "refuses predictive mode until it has an abandon message" in err
    code, out, err = await run_cli("campaign", "set", "Банк-Ноябрь", "--mode", "progressive",
                                   "--data", data)
    assert code == 0, err
    code, out, err = await run_cli("campaign", "start", "Банк-Ноябрь", "--data", data)
    assert code == 0 and "running" in out, err
    code, out, err = await run_cli("campaign", "list", "--json", "--data", data)
    assert code == 0, err
    [c] = json.loads(out)
    assert (c["name"], c["creditor"], c["mode"], c["compliance"], c["status"], c["weight"]) == \
        ("Банк-Ноябрь", "Банк", "progressive", "us-regf", "running", 3)
    assert c["schedule"] == {"days": [1, 2, 3, 4, 5], "from": "10:00", "to": "19:00",
                             "tz": "Europe/Moscow"}
    assert (c["line_group"], c["operators"], c["teams"]) == (["gsm*"], ["olga", "pos1"],
                                                            ["soft"])
    assert (c["wrap_limit_s"], c["wrap_after"], c["take_s"]) == (60.0, "paused", 25.0)
    code, out, err = await run_cli("campaign", "archive", "Банк-Ноябрь", "--data", data)
    assert code == 1 and "stop the campaign before archiving" in err
    assert "Traceback" not in err
    code, out, err = await run_cli("campaign", "start", "Нет-такой", "--data", data)
    assert code == 1 and "no campaign named Нет-такой" in err


async def test_campaign_cli_sets_the_pacing_target_of_the_campaign_and_of_a_segment(tmp_path):
    data = str(tmp_path / "d")
    code, out, err = await run_cli("campaign", "create", "МФО", "--compliance", "us-regf",
                                   "--data", data)
    assert code == 0, err
    code, out, err = await run_cli("campaign", "set", "МФО", "--abandon-target", "2,5%",
                                   "--data", data)
    assert code == 0 and json.loads(out)["abandon_target"] == 0.025, err
    code, out, err = await run_cli("campaign", "set", "МФО", "--abandon-target", "4",
                                   "--data", data)
    assert code == 1 and "at most 3 %, not 4 %" in err and "Traceback" not in err
    code, out, err = await run_cli("campaign", "set", "МФО", "--segment", "dpd 1-30",
                                   "--abandon-target", "1", "--data", data)
    assert code == 0 and json.loads(out)["strategy"]["abandon_target"] == 0.01, err
    code, out, err = await run_cli("campaign", "set", "МФО", "--segment", "dpd 1-30",
                                   "--weight", "2", "--data", data)
    assert code == 1 and "--segment sets a segment's --abandon-target" in err
    store = Store(tmp_path / "d" / "dialbox.sqlite3")
    try:
        cfg = store.campaign_config("МФО")
        assert cfg.abandon_target == 0.025
        assert store.strategy(cfg.id, "dpd 1-30").abandon_target == 0.01
        assert store.strategy(cfg.id, "dpd 31-60").abandon_target is None  # the campaign's
        assert [e["action"] for e in audit.entries(store, obj="campaign", key="МФО")] == \
            ["segment_target", "edit", "create"]
    finally:
        store.close()
    code, out, err = await run_cli("campaign", "set", "МФО", "--abandon-target", "none",
                                   "--data", data)
    assert code == 0 and json.loads(out)["abandon_target"] is None, err


async def test_user_cli_disables_resets_teams_and_keeps_the_last_admin(tmp_path):
    from controller import users
    data = tmp_path / "d"
    s = Store(data / "dialbox.sqlite3")
    users.add(s, "root", "root-password-1", role="admin")
    users.add(s, "olga", "olga-password-1", role="operator")
    s.close()
    d = str(data)
    for args in (("disable", "olga"), ("team", "olga", "soft"), ("role", "olga", "supervisor")):
        code, out, err = await run_cli("user", *args, "--data", d)
        assert code == 0, err
    code, out, err = await run_cli("user", "disable", "root", "--data", d)
    assert code == 1 and "last admin" in err and "Traceback" not in err
    code, out, err = await run_cli("user", "role", "root", "operator", "--data", d)
    assert code == 1 and "last admin" in err
    code, out, err = await run_cli("user", "list", "--json", "--data", d)
    rows = {r["username"]: r for r in json.loads(out)}
    assert (rows["olga"]["disabled"], rows["olga"]["team"], rows["olga"]["role"]) == \
        (1, "soft", "supervisor")
    assert (rows["root"]["disabled"], rows["root"]["role"]) == (0, "admin")
    s = Store(data / "dialbox.sqlite3")
    log = [(e["action"], e["after"]) for e in audit.entries(s, obj="user", key="olga")][::-1]
    s.close()
    assert log == [("disable", {"disabled": True}), ("team", {"team": "soft"}),
                   ("role", {"role": "supervisor"})]


def test_a_schedule_without_a_zone_takes_the_shops(monkeypatch):
    """The shop's zone is the box's (boot and /settings set TZ), not a built-in Moscow."""
    from controller.store_campaigns import Schedule
    monkeypatch.setenv("TZ", "Asia/Yekaterinburg")
    assert Schedule.parse("mon-fri", "09:00-18:00", None).tz == "Asia/Yekaterinburg"
    assert Schedule().tz == "Asia/Yekaterinburg"
    monkeypatch.delenv("TZ")
    assert Schedule.parse("mon-fri", "09:00-18:00", None).tz == "Europe/Moscow"
