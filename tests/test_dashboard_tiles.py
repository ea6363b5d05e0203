"""The dashboard's tiles count what happens: driven by the simulator in virtual time under
ru-230fz on a weekday evening (Moscow may be called; the Urals, Siberia and the Far East are
past their hours), each tile is compared with what the store and the lines say at that moment."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from controller import compliance
from dialbox.appliance import Appliance, Settings
from firmware.clock import run_virtual

# Wednesday 25 November 2026, 20:30 in Moscow: a working day, no holiday near.
EVENING = datetime(2026, 11, 25, 20, 30, tzinfo=timezone(timedelta(hours=3))).timestamp()
LIVE = ("answered", "bridged")


def _truth(app: Appliance, cid: int) -> dict:
    """The tiles as the store and the lines say them, without the counters' own query."""
    db = app.store.db
    live = {ln.call_id for ln in app.lines.lines() if ln.state in LIVE and ln.call_id}
    open_calls = {r[0] for r in db.execute(
        "SELECT call_id FROM attempts WHERE campaign_id=? AND state='dialing'", (cid,))}
    done_answered = db.execute(
        "SELECT COUNT(*) FROM attempts WHERE campaign_id=? AND state='done' AND "
        "outcome='answered'", (cid,)).fetchone()[0]
    # Held by the law: refused after the account's last call began, and the law still says no.
    profile = compliance.get_profile("ru-230fz")
    at = datetime.fromtimestamp(app.clock.wall(), timezone.utc)
    held = 0
    for r in db.execute(
            "SELECT a.id, a.person_key, a.region, a.tz, (SELECT e164 FROM phones p WHERE "
            "p.account_pk=a.id ORDER BY position LIMIT 1) AS phone FROM accounts a "
            "WHERE a.campaign_id=? AND a.status IN ('active', 'held') AND EXISTS (SELECT 1 FROM "
            "decisions d WHERE d.account_pk=a.id AND d.channel='voice' AND d.decision='skip' "
            "AND d.at >= COALESCE((SELECT MAX(t.created_at) FROM attempts t WHERE "
            "t.account_pk=a.id), 0))", (cid,)):
        ctx = compliance.LeadContext(r["person_key"] or f"account:{r['id']}", phone=r["phone"],
                                     region=r["region"], tz=r["tz"], debt=str(r["id"]))
        if not compliance.check(profile, ctx, at=at, history=app.store).allowed:
            held += 1
    return {"answered": done_answered + len(live & open_calls), "in_progress": len(open_calls),
            "held": held, "talking_now": len(live & open_calls), "done_answered": done_answered}


async def _evening(clock, data):
    app = Appliance(Settings(simulate=True, operators=4, data=data, seed=8, wrap_mean_s=6.0,
                             compliance="ru-230fz", sim_transport="tcp"), clock=clock)
    await app.start()
    samples = []
    try:
        [cid] = [c["id"] for c in app.store.campaigns()]
        for _ in range(30):
            await clock.sleep(10)
            for _ in range(5):  # a consistent moment: every write given so far is on disk
                await app.store.writer.drain()
                tiles = app.status()["campaign"]["counters"]
                truth = _truth(app, cid)
                if all(tiles[k] == truth[k] for k in ("answered", "in_progress", "held")):
                    break
            samples.append((tiles, truth))
    finally:
        await app.stop()
    return samples


def test_the_tiles_count_what_happens(tmp_path):
    samples = run_virtual(lambda c: _evening(c, tmp_path / "d"), wall0=EVENING)
    for tiles, truth in samples:
        assert tiles["answered"] == truth["answered"], (tiles, truth)
        assert tiles["in_progress"] == truth["in_progress"], (tiles, truth)
        assert tiles["held"] == truth["held"], (tiles, truth)
        assert tiles["attempts"] == sum(tiles[k] for k in ("busy", "no_answer", "failed",
                                                           "in_progress")) + \
            tiles["answered"] - truth["talking_now"]
    # The case of the issue: conversations going on are answered calls on the dashboard...
    talking = [(t, tr) for t, tr in samples if tr["talking_now"] > 0]
    assert talking and all(t["answered"] >= tr["talking_now"] for t, tr in talking)
    assert any(t["answered"] > tr["done_answered"] for t, tr in talking)
    # ...and debtors past their hours are shown waiting for the law.
    assert samples[-1][0]["held"] > 0
