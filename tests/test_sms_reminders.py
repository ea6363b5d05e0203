"""SMS reminders through the real appliance and simulated modems: rules, law, limits, delivery."""
from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timedelta, timezone

import pytest

from controller import campaigns
from controller.segments import Segment, Strategy
from controller.sms_pacing import SimPacer
from dialbox.appliance import DEMO_CAMPAIGN, Appliance, Settings


def sms(app):
    """The SMS reminders of the demo campaign (running while the campaign runs)."""
    return app.runner.sms[app.store.campaign(DEMO_CAMPAIGN)]


async def _wait(cond, timeout=20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def app(tmp_path):
    a = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                           seed=4, compliance="none", sms_interval_s=3600))
    await a.start()
    # The rules first: the campaign's SMS run from the start (the demo's own segments send due
    # reminders), and a message no longer due by its segment's rules is never sent.
    a.store.set_segments(a.store.campaign(DEMO_CAMPAIGN), [Segment("all", {}, Strategy(sms_rules=(
        "promise_confirmation", "promise_reminder", "not_reached")))])
    # These tests drive the SMS side alone: the campaign runs, but may dial on no line.
    campaigns.update(a.store, DEMO_CAMPAIGN, who="test", source="test", line_group=["none"])
    await a.runner.reconcile()
    await _wait(lambda: all(ln.in_service for ln in a.lines.lines()))
    yield a
    await a.stop()


def _attempt(app, account_id: str, outcome: str, talk: float = 0.0) -> str:
    pk = app.store.db.execute("SELECT id FROM accounts WHERE account_id=?",
                              (account_id,)).fetchone()[0]
    lead = app.store.next_lead(app.store.campaign(DEMO_CAMPAIGN), 10 ** 10)
    call_id = f"c-{account_id}-{outcome}-{datetime.now().timestamp()}"
    app.store.db.execute("UPDATE accounts SET status='active' WHERE id=?", (pk,))
    from controller.store import Lead
    phone = app.store.db.execute("SELECT id, e164 FROM phones WHERE account_pk=?",
                                 (pk,)).fetchone()
    app.store.begin_attempt(app.store.campaign(DEMO_CAMPAIGN), Lead(pk, phone[0], phone[1], account_id),
                            "gsm0", call_id, "pos1")
    app.store.finish_attempt(call_id, outcome=outcome, q850=16, reason="", ring_s=3,
                             talk_s=talk, abandoned=False)
    assert lead is not None
    return call_id


@pytest.mark.slow
async def test_promise_confirmation_goes_out_once_and_is_delivered(app):
    call_id = _attempt(app, "DEMO-0001", "answered", talk=30)
    app.store.record_disposition(call_id, "promise", amount=5000,
                                 date=date.today() + timedelta(days=10))
    assert await sms(app).run_once() == 1
    msg = app.store.db.execute("SELECT rule, number, line, text, state FROM sms_messages"
                               ).fetchone()
    assert msg["rule"] == "promise_confirmation" and "5\u00a0000,00 ₽" in msg["text"]
    assert "руб" not in msg["text"] and ".." not in msg["text"]
    sim = next(s for s in app.sims if s.name == msg["line"])
    assert "".join(p.text for p in sim.sms_sent) == msg["text"]  # the modem got exactly it
    await _wait(lambda: app.store.db.execute("SELECT state FROM sms_messages").fetchone()[0]
                == "delivered")
    assert await sms(app).run_once() == 0  # decided once


@pytest.mark.slow
async def test_law_and_dnc_stop_an_sms_with_the_reason_kept(app, aiohttp_client):
    sms(app).compliance = __import__("controller.compliance", fromlist=["x"]).get_profile(
        "ru-230fz")
    call_id = _attempt(app, "DEMO-0002", "answered", talk=30)
    app.store.record_disposition(call_id, "promise", amount=100,
                                 date=date.today() + timedelta(days=3))
    number = app.store.db.execute("SELECT e164 FROM phones p JOIN accounts a ON "
                                  "a.id=p.account_pk WHERE a.account_id='DEMO-0002'"
                                  ).fetchone()[0]
    app.store.dnc_add(number, "asked to stop", "anna")
    await sms(app).run_once()
    row = app.store.db.execute("SELECT state, detail FROM sms_messages").fetchone()
    assert row["state"] == "skipped" and "do-not-call" in row["detail"]
    assert all(not s.sms_sent for s in app.sims)
    # the SMS page says why in its own language: the reason's template and values are kept
    from firmware.errors import msg_from_json
    from web_admin import i18n
    overview = await app.sms_overview(DEMO_CAMPAIGN)
    (shown,) = [m for m in overview["messages"] if m["state"] == "skipped"]
    assert not shown["text"] and [i18n.message_of("ru", msg_from_json(s))
                                  for s in shown["said"]] == [
        "номер в списке «не звонить»"]
    from controller import users
    from web_admin.app import make_app
    from web_admin.render import SESSION_COOKIE
    users.add(app.store, "sveta", "sveta-password-1", role="supervisor")
    uid = app.store.db.execute("SELECT id FROM users WHERE username='sveta'").fetchone()[0]
    client = await aiohttp_client(make_app(app))
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: users.open_session(app.store,
                                                                                 uid)[0]})
    page = await (await client.get("/sms", params={"campaign": DEMO_CAMPAIGN})).text()
    assert "номер в списке «не звонить»" in page and "do-not-call" not in page
    # At 03:00 in Moscow the law holds an SMS back (kept for later, nothing recorded yet).
    night = datetime(2026, 11, 25, 0, 0, tzinfo=timezone.utc).timestamp()
    app.store.dnc_remove(number, "anna")
    app.store.db.execute("DELETE FROM sms_messages")
    app.store.db.execute("UPDATE accounts SET tz='Europe/Moscow'")
    assert await sms(app).run_once(now=night) == 0
    assert app.store.db.execute("SELECT COUNT(*) FROM sms_messages").fetchone()[0] == 0


@pytest.mark.slow
async def test_per_sim_daily_limit_spreads_and_stops(app):
    sms(app).per_sim_per_day = 1
    # The daily cap alone: no spacing over the day, no interval (tests/test_sms_pacing.py).
    sms(app).pacer = SimPacer(app.clock, interval_s=0.0, spread=False)
    for i in range(1, 7):  # six accounts nobody reached twice
        acc = f"DEMO-{i:04d}"
        _attempt(app, acc, "no_answer")
        _attempt(app, acc, "busy")
    sent = await sms(app).run_once()
    assert sent == 4  # four SIMs, one SMS each today
    lines = [r[0] for r in app.store.db.execute("SELECT line FROM sms_messages WHERE "
                                                "state != 'skipped'")]
    assert sorted(lines) == ["gsm0", "gsm1", "gsm2", "gsm3"]


@pytest.mark.slow
async def test_a_sim_the_operator_refuses_rests_and_the_lines_page_says_so(app, aiohttp_client):
    for sim in app.sims:  # every operator's anti-spam filter says "network out of order"
        sim.sms_refusal = 38
    _attempt(app, "DEMO-0001", "no_answer")
    _attempt(app, "DEMO-0001", "busy")
    assert await sms(app).run_once() == 0
    row = app.store.db.execute("SELECT line, state FROM sms_messages").fetchone()
    assert row["state"] == "failed"
    rested = [ln for ln in await app.lines_detail() if ln.get("sms_rest")]
    assert [ln["name"] for ln in rested] == [row["line"]]
    assert "38" in rested[0]["sms_rest"]["reason"]
    assert rested[0]["sms_rest"]["until"] > app.clock.wall()
    # the lines page names the refusal in the reader's language, the code kept
    from controller import users
    from tests.test_i18n import russian_only
    from web_admin.app import make_app
    from web_admin.render import SESSION_COOKIE
    users.add(app.store, "tim", "tim-password-1", role="technician")
    uid = app.store.db.execute("SELECT id FROM users WHERE username='tim'").fetchone()[0]
    client = await aiohttp_client(make_app(app))
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: users.open_session(app.store,
                                                                                 uid)[0]})

    def rest_of(page):
        row = re.search(r'<tr data-line="%s".*?</tr>' % row_line, page, re.S).group(0)
        return re.search(r'<p class="sms-rest bad">(.*?)</p>', row, re.S).group(1)
    row_line = row["line"]
    ru = rest_of(await (await client.get("/lines?lang=ru")).text())
    assert "SMS приостановлены до" in ru and "сеть неисправна (+CMS ERROR 38)" in ru, ru
    assert not russian_only(re.sub(r"<[^>]+>", " ", ru), ("web_admin/",)), ru
    en = rest_of(await (await client.get("/lines?lang=en")).text())
    assert "+CMS ERROR 38: network out of order" in en, en


@pytest.mark.slow
async def test_due_reminder_for_soft_segment_accounts_nobody_spoke_to(app):
    app.store.set_segments(app.store.campaign(DEMO_CAMPAIGN), [
        Segment("soft", {"dpd": [1, 30]}, Strategy(sms_rules=("due_reminder",))),
        Segment("rest", {}, Strategy())])
    soft = app.store.db.execute("SELECT COUNT(*) FROM accounts WHERE dpd BETWEEN 1 AND 30"
                                ).fetchone()[0]
    due = sms(app).due()
    assert len(due) == soft and {d["rule"] for d in due} == {"due_reminder"}
    assert "просрочен платёж" in sms(app).templates["due_reminder"].format(**due[0]["fields"])


async def test_an_sms_on_the_wire_when_its_sender_stops_is_finished_and_recorded(app):
    """A pause stops the campaign's SMS sender while a module is submitting a message: the
    message is let finish and recorded as sent, and the line's next command (a dial) is not
    written into it: the module answers it, and the line stays in service."""
    call_id = _attempt(app, "DEMO-0001", "answered", talk=30)
    app.store.record_disposition(call_id, "promise", amount=5000,
                                 date=date.today() + timedelta(days=10))
    for s in app.sims:
        s.sms_submit_s = 20.0  # the network takes its time to accept it
    look = asyncio.create_task(sms(app).run_once())
    await _wait(lambda: any(s.sms_sent for s in app.sims))
    look.cancel()  # what SmsSender.stop does to its loop
    await asyncio.gather(look, return_exceptions=True)
    row = app.store.db.execute("SELECT id, line, text FROM sms_messages").fetchone()
    sim = next(s for s in app.sims if s.name == row["line"])
    await app.lines.dial(row["line"], "+79123456789", call_id="after-sms")
    await _wait(lambda: app.store.db.execute("SELECT state FROM sms_messages").fetchone()[0]
                in ("sent", "delivered"))
    await _wait(lambda: any(c.number == "+79123456789" for c in sim.records))
    assert "".join(p.text for p in sim.sms_sent) == row["text"]  # nothing else went into it
    line = next(ln for ln in app.lines.lines() if ln.name == row["line"])
    assert line.in_service
