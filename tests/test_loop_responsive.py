"""The event loop never stalls on the law's refusals: thousands of leads held at night are
looked at a chunk at a time, their refusals share one commit per chunk, timers run between."""
from __future__ import annotations

import asyncio

from controller import dialer as dialer_mod
from tests.test_dialer import at, make, store  # noqa: F401  (the store fixture)

NIGHT = "2026-11-25T03:30:00+03:00"


async def test_five_thousand_leads_held_at_night_never_hold_the_loop(store):  # noqa: F811
    with store.tx():
        for i in range(5000):
            store.upsert_account(1, {"account_id": f"N{i}", "tz": "Europe/Moscow"},
                                 [(f"+7914{i:07d}", "mobile")])
    d, fl, ops = await make(store, at(NIGHT), operators=10, lines=20)
    turns = 0
    stop = False

    async def ticker():  # one tick per loop turn: what timers and I/O would get
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    looked: list[int] = []  # loop turn seen at each lead looked at
    real_next = store.next_lead
    store.next_lead = lambda *a, **k: (looked.append(turns), real_next(*a, **k))[1]
    commits = 0
    real_tx = store.tx

    class CountingTx:
        def __init__(self):
            self.tx = real_tx()

        def __enter__(self):
            return self.tx.__enter__()

        def __exit__(self, *exc):
            nonlocal commits
            outer = self.tx.outer
            self.tx.__exit__(*exc)
            commits += outer
    store.tx = CountingTx
    tick = asyncio.get_running_loop().create_task(ticker())
    try:
        while True:
            await d._cycle()
            held = store.db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
            if held >= 5005:
                break
    finally:
        stop = True
        await tick
        await ops.stop()
    assert not fl.dials  # the law: nobody at 03:30
    # Never more than one chunk of leads between two turns of the loop.
    runs: dict[int, int] = {}
    for t in looked:
        runs[t] = runs.get(t, 0) + 1
    assert max(runs.values()) <= dialer_mod.LEADS_PER_CHUNK + 1
    # The refusals were written in bulk: about one commit per chunk, not one per lead.
    assert commits <= 5005 // dialer_mod.LEADS_PER_CHUNK + 400
