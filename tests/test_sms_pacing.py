"""SMS at the pace each SIM's operator tolerates, through the real GSM driver and the simulated
modem, in virtual time: 32 SIMs never send faster than their interval, the day's reminders are
spread over the hours the law has left, and a SIM the operator refuses (+CMS ERROR 38) rests.

The modems are reached over TCP (as a gateway's ``socket://`` ports are): a pty delivers its
bytes from a kernel work queue, which a virtual-time loop cannot wait for.
"""
from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from controller import sms_templates
from controller.segments import Segment, Strategy
from controller.sms import SmsReminders
from controller.sms_pacing import SimPacer, hours_left_s
from controller.compliance import get_profile
from controller.store import Store
from firmware.clock import run_virtual
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule
from firmware.linemanager import LineManager
from firmware.sim.modem import SimModem
from tests.gsmsim import population, profile_for


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class Box:
    """A store with reminders due, SIMs on simulated modems, the line manager, the reminders."""

    def __init__(self, clock, path, sims: int, reminders: int) -> None:
        self.clock, self.path, self.n_sims, self.n_due = clock, path, sims, reminders
        self.sent_at: dict[str, list[float]] = {}  # line -> clock time of each message taken
        self.offered: dict[str, list[float]] = {}

    async def __aenter__(self) -> "Box":
        self.store = store = Store(self.path, self.clock)
        self.cid = cid = store.campaign("c", create=True)
        store.set_segments(cid, [Segment("all", {}, Strategy(sms_rules=("due_reminder",)))])
        with store.tx():
            for i in range(self.n_due):
                store.upsert_account(cid, {"account_id": f"A{i}", "tz": "Europe/Moscow",
                                           "dpd": 10, "debt_amount": 1000.0,
                                           "debtor_name": f"Иванов Иван {i}"},
                                     [(f"+7916{i:07d}", "mobile")])
        sms_templates.save(store, cid, by="test", creditor_name="ООО «Тест»",
                           contact_phone="+74950000000")
        self.sims, drivers = [], []
        for i in range(self.n_sims):
            sim = SimModem(f"m{i}", DIALECTS["sim800"], population("no_answer"), self.clock,
                           seed=i)
            self._watch(sim, f"gsm{i}")
            drivers.append(GsmModule(f"gsm{i}", await sim.start_tcp(),
                                     profile_for("sim800", health_interval_s=900), self.clock))
            self.sims.append(sim)
        self.lines = LineManager(drivers, self.clock)
        await self.lines.start()
        for _ in range(600):
            if len(self.lines.free_lines()) == self.n_sims:
                break
            await asyncio.sleep(0.1)
        assert len(self.lines.free_lines()) == self.n_sims
        self.pacer = SimPacer(self.clock, seed=1)
        self.sms = SmsReminders(store, self.lines, self.clock, campaign_id=cid,
                                compliance_profile="ru-230fz", pacer=self.pacer)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.sms.stop()
        await self.lines.stop()
        for sim in self.sims:
            await sim.stop()
        self.store.close()

    def _watch(self, sim: SimModem, line: str) -> None:
        """Note when the modem takes each message (its first part: long ones have several)."""
        times = self.sent_at[line] = []
        clock = self.clock

        class Taken(list):
            def append(self, submit) -> None:
                if submit.concat is None or submit.concat.part == 1:
                    times.append(clock.now())
                super().append(submit)
        sim.sms_sent = Taken()
        offers = self.offered[line] = []  # every AT+CMGS, taken or refused
        real = sim._command

        def command(text: str) -> None:
            if text.upper().startswith("AT+CMGS="):
                offers.append(clock.now())
            real(text)
        sim._command = command


def test_32_sims_keep_their_pace_and_spread_the_reminders_over_the_hour_left(tmp_path):
    # 21:00 on a Wednesday in Moscow: the law allows messages until 22:00. 128 reminders on 32
    # SIMs: at 30 s a SIM they would all be out in two minutes; spread, they take the hour.
    async def main(clock):
        async with Box(clock, tmp_path / "p.sqlite3", sims=32, reminders=128) as box:
            t0 = clock.now()
            await box.sms.start()
            await clock.sleep(600)
            first_ten_minutes = sum(len(t) for t in box.sent_at.values())
            await clock.sleep(3000)
            return box, t0, first_ten_minutes

    box, t0, early = run_virtual(main, wall0=_at("2026-11-25T21:00:00+03:00"))
    every = sorted(t for times in box.sent_at.values() for t in times)
    assert len(every) >= 120, len(every)  # the hour was enough for (nearly) all of them
    assert early <= 48, early  # not a burst: about a sixth in the first ten minutes
    assert every[-1] - t0 >= 3000, every[-1] - t0  # the last ones went out late in the hour
    gaps = [b - a for times in box.sent_at.values() for a, b in zip(times, times[1:])]
    assert min(gaps) >= 30.0, min(gaps)  # and no SIM ever faster than its interval
    assert max(len(t) for t in box.sent_at.values()) <= 6


def test_32_sims_never_exceed_their_interval_when_more_is_due_than_they_may_send(tmp_path):
    # 21:55: five minutes left and 640 reminders on 32 SIMs. The spacing alone would send one
    # every half second; each SIM still waits its 30 s (and jitter) between two messages.
    async def main(clock):
        async with Box(clock, tmp_path / "q.sqlite3", sims=32, reminders=640) as box:
            await box.sms.start()
            await clock.sleep(330)
            return box

    box = run_virtual(main, wall0=_at("2026-11-25T21:55:00+03:00"))
    gaps = [b - a for times in box.sent_at.values() for a, b in zip(times, times[1:])]
    assert min(gaps) >= 30.0, min(gaps)
    per_sim = [len(t) for t in box.sent_at.values()]
    assert max(per_sim) <= 11 and min(per_sim) >= 6, per_sim  # 300 s / (30..45 s) each


def test_a_sim_the_operator_refuses_rests_and_its_message_goes_by_another(tmp_path):
    # Six reminders at 21:00, one every ten minutes or so; gsm1's operator answers its message
    # with +CMS ERROR 38 (its anti-spam filter). Forty minutes on: gsm1 rests and was offered
    # nothing more; the refused occasion went out on another SIM.
    async def main(clock):
        async with Box(clock, tmp_path / "r.sqlite3", sims=4, reminders=6) as box:
            box.sims[1].sms_refusal = 38
            await box.sms.start()
            await clock.sleep(2400)
            rows = box.store.db.execute("SELECT line, state, key FROM sms_messages").fetchall()
            return box, box.pacer.rests.get("gsm1"), rows

    box, rest, rows = run_virtual(main, wall0=_at("2026-11-25T21:00:00+03:00"))
    assert rest is not None and "38" in rest.reason, rest
    assert len(box.offered["gsm1"]) == 1 and not box.sent_at["gsm1"]
    failed = [r for r in rows if r["state"] == "failed"]
    assert [r["line"] for r in failed] == ["gsm1"]
    occasion = failed[0]["key"].split(":failed:")[0]
    again = [r for r in rows if r["key"] == occasion]
    assert again and again[0]["line"] != "gsm1" and again[0]["state"] in ("sent", "delivered")


def test_hours_left_follow_the_law_and_the_day():
    ru = get_profile("ru-230fz")
    assert hours_left_s(ru, _at("2026-11-25T21:00:00+03:00")) == 3600  # Wednesday: to 22:00
    assert hours_left_s(ru, _at("2026-11-28T19:30:00+03:00")) == 1800  # Saturday: to 20:00
    assert hours_left_s(ru, _at("2026-11-25T06:00:00+03:00")) == 14 * 3600  # from 08:00
    assert hours_left_s(ru, _at("2026-11-25T23:00:00+03:00")) == 0
    assert hours_left_s(get_profile("none"), _at("2026-11-25T23:00:00+03:00")) == 3600


async def test_a_long_list_at_night_never_stalls_the_loop(tmp_path):
    # 40,000 debtors due a reminder at 03:30: the look over the list and the law's refusals
    # run off the event loop; one look takes a bounded number of them, and those the law holds
    # until the morning are not looked at again before then. (On the loop, the look alone
    # took 10 s of CPU for 200,000.) The loop thread's own CPU time is the measure: a loaded
    # machine's scheduling does not change it.
    import time

    from controller import sms as sms_mod
    from controller.store import AccountWriter
    from dialbox import sdnotify
    from tests.test_dialer import FakeClock
    from tests.test_sms_templates import SmsLines
    store = Store(tmp_path / "n.sqlite3", FakeClock(_at("2026-11-25T03:30:00+03:00")))
    cid = store.campaign("c", create=True)  # the default segments: dpd 1-30 get due reminders
    w = AccountWriter(store, cid)
    for i in range(40_000):
        w.add({"account_id": f"N{i}", "tz": "Europe/Moscow", "dpd": 10, "debt_amount": 100.0,
               "debtor_name": "Иванов Иван Иванович"}, [(f"+7916{i:07d}", "mobile")])
    w.finish()
    sms_templates.save(store, cid, by="test", creditor_name="ООО «Тест»",
                       contact_phone="+74950000000")
    store.start_writer()
    reminders = SmsReminders(store, SmsLines(), store.clock, campaign_id=cid,  # type: ignore
                             compliance_profile="ru-230fz")
    lag = sdnotify.LoopLag()
    monitor = asyncio.get_running_loop().create_task(sdnotify.heartbeat(lag, period_s=0.02))
    try:
        await asyncio.sleep(0.1)
        cpu = time.thread_time()
        assert await reminders.run_once() == 0
        assert await reminders.run_once() == 0
        cpu = time.thread_time() - cpu
        await asyncio.sleep(0.1)
    finally:
        monitor.cancel()
        await asyncio.gather(monitor, return_exceptions=True)
        held = store.db.execute("SELECT COUNT(*) FROM decisions WHERE channel='sms' AND "
                                "code='outside_hours'").fetchone()[0]
        store.close()
    assert cpu < 0.5, f"the loop thread worked {cpu:.2f} s through the look"
    assert lag.worst < 1.0, f"the loop stalled {lag.worst * 1000:.0f} ms"
    assert held == 2 * sms_mod.PENDING_MAX  # two looks, each at the next ones


def test_rests_grow_while_a_sim_keeps_being_refused_and_three_failures_rest_it_too():
    from tests.test_dialer import FakeClock
    clock = FakeClock(_at("2026-11-25T12:00:00+03:00"))
    pacer = SimPacer(clock, rest_s=600, seed=1)  # type: ignore[arg-type]
    t0 = clock.now()
    pacer.failed("gsm0", "+CMS ERROR 21: short message transfer rejected", blocked=True)
    assert pacer.rests["gsm0"].until - t0 == 600 and pacer.ready(["gsm0"]) == []
    clock.set(clock.wall() + 601)
    assert pacer.ready(["gsm0"]) == ["gsm0"] and "gsm0" not in pacer.rests
    pacer.failed("gsm0", "+CMS ERROR 38: network out of order", blocked=True)
    assert pacer.rests["gsm0"].until - clock.now() == 1200  # refused again at once: twice as long
    clock.set(clock.wall() + 1201)
    pacer.sent("gsm0")  # it sends again: the next rest is the first one again
    for n in range(3):  # failures that say nothing of a block rest it after three in a row
        assert "gsm0" not in pacer.rests
        clock.set(clock.wall() + 60)
        pacer.failed("gsm0", "+CMS ERROR 500: unknown error", blocked=False)
    rest = pacer.rests["gsm0"]
    assert rest.until - clock.now() == 600 and rest.reason.startswith("3 failures in a row")


def test_a_rest_outlives_a_restart_of_the_box(tmp_path):
    # The technician restarts the box to "fix" the SIM the operator just refused: it still
    # rests, on the lines page too, and its next refusal rests it twice as long.
    from tests.test_dialer import FakeClock
    clock = FakeClock(_at("2026-11-25T12:00:00+03:00"))
    store = Store(tmp_path / "r.sqlite3", clock)  # type: ignore[arg-type]
    SimPacer(clock, rest_s=600, store=store).failed(  # type: ignore[arg-type]
        "gsm1", "+CMS ERROR 38: network out of order", blocked=True)
    store.close()
    clock.set(clock.wall() + 120)  # two minutes later the box is back
    store = Store(tmp_path / "r.sqlite3", clock)  # type: ignore[arg-type]
    pacer = SimPacer(clock, rest_s=600, store=store)  # type: ignore[arg-type]
    assert pacer.ready(["gsm0", "gsm1"]) == ["gsm0"]
    assert pacer.rests["gsm1"].until_wall == _at("2026-11-25T12:10:00+03:00")
    assert "38" in pacer.rests["gsm1"].reason
    clock.set(clock.wall() + 481)
    assert pacer.ready(["gsm1"]) == ["gsm1"]
    pacer.failed("gsm1", "+CMS ERROR 38: network out of order", blocked=True)
    assert pacer.rests["gsm1"].until - clock.now() == 1200
    pacer.sent("gsm1")  # it sends again: nothing is kept for the next start
    store.close()
    store = Store(tmp_path / "r.sqlite3", clock)  # type: ignore[arg-type]
    assert SimPacer(clock, store=store).rests == {}  # type: ignore[arg-type]
    store.close()


def test_the_days_spread_follows_the_shops_time_zone(monkeypatch):
    """The shop in Novosibirsk: its SMS day ends at 22:00 there, four hours before Moscow's."""
    from zoneinfo import ZoneInfo

    profile = get_profile("ru-230fz")
    wall = datetime(2026, 11, 25, 20, 0, tzinfo=ZoneInfo("Asia/Novosibirsk")).timestamp()
    monkeypatch.delenv("TZ", raising=False)
    moscow = hours_left_s(profile, wall)  # 16:00 in Moscow, the default
    monkeypatch.setenv("TZ", "Asia/Novosibirsk")  # as boot and /settings set it
    assert hours_left_s(profile, wall) == pytest.approx(moscow - 4 * 3600)
