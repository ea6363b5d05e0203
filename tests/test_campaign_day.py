"""A simulated campaign day through the real controller and the simulated GSM and E1 lines,
ending with the KPI funnel checked against what the simulated debtors did and paid."""
from __future__ import annotations

import asyncio
import csv
from datetime import date, timedelta

import pytest

from controller import kpi
from controller.payments import import_payments
from dialbox.appliance import Appliance, Settings


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_campaign_day_funnel_matches_what_debtors_did(tmp_path):
    app = Appliance(Settings(simulate=True, operators=10, data=tmp_path / "d", time_scale=40.0,
                             seed=2026, wrap_mean_s=8.0, compliance="none",
                             sms_interval_s=300))
    await app.start()
    try:
        await asyncio.sleep(25)  # about 17 simulated minutes of a busy floor
        await app.campaign_action("Демо-кампания", "pause", by="test")
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while any(ln.call_id for ln in app.lines.lines()) or any(
                o.state != "free" for o in app.operators.ops):
            assert loop.time() < end, "calls or wrap-ups did not finish"
            await asyncio.sleep(0.2)
        # What the debtors did, as the simulators and simulated operators saw it.
        sim_calls = [r for s in app.sims for r in s.records] + [
            r for span in app.e1_spans for r in span.simulator.records
            if r.direction == "outbound"]
    finally:
        await app.stop()

    from controller.store import Store
    store = Store(tmp_path / "d" / "dialbox.sqlite3")
    cid = store.campaign("Демо-кампания")
    talked = [c for c in app.conversations.values()]
    promised = [c for c in talked if c.promise_share > 0]

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
                w.writerow([acc, f"{amount:.2f}", date.today().isoformat()])
    import_payments(store, pay, today=date.today() + timedelta(days=30))
    row = kpi.funnel(store, cid, by="campaign")[0]
    kept = sum(1 for c in promised if c.keeps)
    assert (row["kept"], row["broken"]) == (kept, len(promised) - kept)
    assert row["kept_rate"] == pytest.approx(kept / len(promised), abs=1e-4)
    # And per line: the GSM and E1 lines both carried the day.
    lines = {r["key"] for r in kpi.funnel(store, cid, by="line")}
    assert any(k.startswith("gsm") for k in lines) and any(k.startswith("e1-") for k in lines)
    store.close()
