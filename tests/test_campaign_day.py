"""A simulated campaign day through the real controller and the simulated GSM and E1 lines,
ending with the KPI funnel checked against what the simulated debtors did and paid."""
from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller import kpi
from controller.compliance.zones import resolve
from controller.payments import import_payments
from dialbox.appliance import Appliance, Settings
from firmware.clock import run_virtual


REGIONS = ("Москва", "Самарская область", "Свердловская область", "Новосибирская область",
           "Приморский край", "Калининградская область", "Татарстан", "Санкт-Петербург")
# Wednesday 25 November 2026, 09:00 in Moscow: a working day for everybody on the list.
SHIFT_START = datetime(2026, 11, 25, 9, 0, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()
SHIFT_S = 8 * 3600


def _call_list(path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["Номер договора", "ФИО", "Телефон", "Сумма долга", "Просрочка", "Регион"])
        for i in range(n):
            w.writerow([f"D-{i:05d}", f"Должник {i}", f"+7 912 {i:07d}",
                        f"{10000 + 37 * i},00", 30 + i % 60, REGIONS[i % len(REGIONS)]])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_campaign_day_funnel_matches_what_debtors_did(tmp_path, monkeypatch):
    """A whole 8-hour shift under ru-230fz, in virtual time: fast, and the same on any machine."""
    # Every call of the shift is compared with the store: the simulators keep them all here
    # (a running box keeps a window of 2,000 per simulator; the E1 span carries most calls).
    monkeypatch.setattr("firmware.sim.audioport.KEEP_RECORDS", 100_000)
    _call_list(tmp_path / "list.csv", 2000)
    app = run_virtual(lambda clock: _shift(tmp_path, clock), wall0=SHIFT_START)
    _check_funnel(tmp_path, app)


async def _shift(tmp_path, clock) -> Appliance:
    app = Appliance(Settings(simulate=True, operators=4, data=tmp_path / "d", seed=2026,
                             wrap_mean_s=8.0, compliance="ru-230fz", sms_interval_s=300,
                             calllist=tmp_path / "list.csv", sim_transport="tcp"),
                    clock=clock)
    await app.start()
    try:
        await clock.sleep(SHIFT_S)
        await app.campaign_action("Демо-кампания", "pause", by="test")
        end = clock.now() + 600
        while any(ln.call_id for ln in app.lines.lines()) or any(
                o.state != "free" for o in app.operators.ops):
            assert clock.now() < end, "calls or wrap-ups did not finish"
            await clock.sleep(1)
        # What the debtors did, as the simulators and simulated operators saw it.
        app.sim_calls = [r for s in app.sims for r in s.records] + [
            r for span in app.e1_spans for r in span.simulator.records
            if r.direction == "outbound"]
    finally:
        await app.stop()
    return app


def _check_funnel(tmp_path, app) -> None:
    sim_calls = app.sim_calls
    from controller.store import Store
    store = Store(tmp_path / "d" / "dialbox.sqlite3")
    cid = store.campaign("Демо-кампания")
    talked = [c for c in app.conversations.values()]
    promised = [c for c in talked if c.promise_share > 0]

    _check_the_law(store, cid)
    row = kpi.funnel(store, cid, by="campaign")[0]
    assert row["attempts"] == len(sim_calls)
    assert row["contacts"] == len(talked)  # every conversation ended with its outcome recorded
    assert row["rpc"] == sum(1 for c in talked if c.rpc)
    assert row["ptp"] == len(promised) > 0
    debts = {r["call_id"]: r["debt_amount"] for r in store.db.execute(
        "SELECT a.call_id, acc.debt_amount FROM attempts a JOIN accounts acc ON "
        "acc.id=a.account_pk")}
    expected_promised = sum(round(debts[cid_] * c.promise_share, 2)
                            for cid_, c in app.conversations.items() if c.promise_share > 0)
    assert row["amount_promised"] == pytest.approx(expected_promised)

    # The creditor's payments arrive: those who keep their word pay in full.
    pay = tmp_path / "payments.csv"
    with pay.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["Номер договора", "Сумма платежа", "Дата платежа"])
        for call_id, c in app.conversations.items():
            if c.promise_share > 0 and c.keeps:
                acc, amount = store.db.execute(
                    "SELECT acc.account_id, p.amount FROM promises p JOIN accounts acc ON "
                    "acc.id=p.account_pk WHERE p.call_id=?", (call_id,)).fetchone()
                w.writerow([acc, f"{amount:.2f}", date(2026, 11, 25).isoformat()])
    import_payments(store, pay, today=date(2026, 11, 25) + timedelta(days=30))
    row = kpi.funnel(store, cid, by="campaign")[0]
    kept = sum(1 for c in promised if c.keeps)
    assert (row["kept"], row["broken"]) == (kept, len(promised) - kept)
    assert row["kept_rate"] == pytest.approx(kept / len(promised), abs=1e-4)
    # And per line: the GSM and E1 lines both carried the day.
    lines = {r["key"] for r in kpi.funnel(store, cid, by="line")}
    assert any(k.startswith("gsm") for k in lines) and any(k.startswith("e1-") for k in lines)
    store.close()


def _check_the_law(store, cid: int) -> None:
    """ru-230fz held all day: local hours, one conversation a day, refusals recorded."""
    rows = store.db.execute(
        "SELECT a.created_at, a.outcome, EXISTS (SELECT 1 FROM dispositions d WHERE "
        "d.call_id=a.call_id AND d.kind IN ('third_party', 'wrong_number')), acc.tz, "
        "acc.region, a.number, acc.person_key FROM attempts a JOIN accounts acc ON "
        "acc.id=a.account_pk WHERE a.campaign_id=? AND a.state != 'line_fault'",
        (cid,)).fetchall()
    assert rows and max(r[0] for r in rows) - SHIFT_START > 7 * 3600  # dialed all shift long
    talks: dict = {}
    for created, outcome, not_the_debtor, tz, region, number, person in rows:
        zones = resolve(tz, region, number).zones  # the debtor's zones, as the law engine reads
        assert zones, (tz, region)
        for z in zones:
            local = datetime.fromtimestamp(created, ZoneInfo(z))
            assert 8 <= local.hour < 22, (local, z)
        # A conversation, as the law counts it: the call reached the debtor (the abandon
        # message too), unless the operator found a third party or a wrong number.
        if outcome == "answered" and not not_the_debtor:
            key = (person, datetime.fromtimestamp(created, ZoneInfo(zones[0])).date())
            talks[key] = talks.get(key, 0) + 1
    assert talks and max(talks.values()) == 1
    # Primorye's evening came at 15:00 Moscow time: its debtors were held, with the reason.
    held = store.db.execute("SELECT COUNT(*) FROM decisions WHERE campaign_id=? AND "
                            "code LIKE '%outside_hours%'", (cid,)).fetchone()[0]
    assert held > 0
