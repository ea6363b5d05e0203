"""Received SMS: kept, matched to the debtor by number, flagged when they read like a refusal,
and deleted from the SIM only after the store has them; through the real GSM driver, the line
manager and the simulated modem on a pty."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from cext import linestate_codes as C
from controller import audit, sms_inbox
from controller.sms_inbox import SmsInbox, stop_word
from controller.store import Store
from firmware.clock import Clock
from firmware.errors import UserError
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule
from firmware.linemanager import LineManager
from firmware.sim.modem import SimModem
from tests.gsmsim import population, profile_for, until


@pytest.mark.parametrize("text, word", [
    ("СТОП", "стоп"), ("стоп.", "стоп"), ("Stop please", "stop"), ("Отказ от звонков", "отказ"),
    ("Не звоните мне больше!", "не звоните"), ("Оплачу завтра", None),
    ("Остановка у дома", None),  # a word that starts like one is not one
])
def test_a_reply_reads_like_a_refusal_by_its_words(text, word):
    assert stop_word(text) == word


@pytest.fixture
async def box(tmp_path):
    """A store with a debtor, the simulated modem on a pty, the real driver, a line manager."""
    clock = Clock(10.0)
    store = Store(tmp_path / "d.sqlite3", clock)
    cid = store.campaign("Банк", create=True)
    store.upsert_account(cid, {"account_id": "A-1", "debtor_name": "Иванов Иван"},
                         [("+79001112233", "mobile")])
    sim = SimModem("m0", DIALECTS["sim800"], population("answer"), clock, seed=3)
    port = await sim.start()
    parts: dict = {"store": store, "sim": sim, "port": port, "clock": clock, "path":
                   tmp_path / "d.sqlite3"}
    yield parts
    await sim.stop()
    parts["store"].close()


async def _lines(box) -> tuple[LineManager, SmsInbox]:
    """The line up, with the inbox listening from before the line's first listing (as the box
    does: what was left on the SIM comes up right after the module's init)."""
    drv = GsmModule("gsm0", box["port"], profile_for("sim800"), box["clock"])
    lines = LineManager([drv], box["clock"])
    inbox = SmsInbox(box["store"], lines)
    lines.subscribe(inbox.on_line_event)
    await lines.start()
    await until(lambda: lines.channels[0].driver.in_service)
    return lines, inbox


def _rows(path) -> list[tuple]:
    """What is committed, seen from a connection of its own."""
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT sender, text, account_pk, stop_word FROM sms_inbox").fetchall()
    finally:
        db.close()


async def test_a_debtors_reply_is_kept_matched_flagged_and_only_then_deleted_from_the_sim(box):
    store, sim = box["store"], box["sim"]
    store.start_writer()  # as on the box: the store's work on its writer thread
    committed_at_delete = []

    class Watched(list):  # the modem's command log: what is committed when AT+CMGD arrives
        def append(self, line: str) -> None:
            if line.startswith("AT+CMGD"):
                committed_at_delete.append(_rows(box["path"]))
            super().append(line)
    sim.commands = Watched(sim.commands)
    lines, inbox = await _lines(box)
    try:
        sim.receive_sms("89001112233", "СТОП. Не пишите мне")  # the debtor, in the 8 format
        await until(lambda: not sim._inbox, timeout=30)
        [(sender, text, account_pk, word)] = _rows(box["path"])
        assert (text, word) == ("СТОП. Не пишите мне", "стоп")
        assert account_pk == store.db.execute("SELECT id FROM accounts WHERE account_id='A-1'"
                                              ).fetchone()[0]
        assert committed_at_delete and all(len(seen) == 1 for seen in committed_at_delete)
        # Flagged for a person: nothing was refused by itself, but nobody dials or messages
        # the debtor automatically until the person decides (it may be his refusal).
        assert store.db.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0
        status = "SELECT status FROM accounts WHERE id=?"
        assert store.db.execute(status, (account_pk,)).fetchone()[0] == "flagged"
        assert [f["kind"] for f in store.open_flags(account_pk)] == ["sms_reply"]
        cid = store.campaign("Банк")
        assert store.next_lead(cid, store.clock.wall()) is None
        [msg] = sms_inbox.received(store, flagged=True)
        assert (msg["account_id"], msg["debtor_name"], msg["campaign"]) == \
            ("A-1", "Иванов Иван", "Банк")
        sms_inbox.decide(store, msg["id"], "not_a_refusal", who="anna", source="test")
        assert sms_inbox.received(store, flagged=True) == []
        assert store.open_flags(account_pk) == []  # not a refusal: dialing may go on
        assert store.db.execute(status, (account_pk,)).fetchone()[0] == "active"
        [entry] = audit.entries(store, obj="refusal", key=f"sms:{msg['id']}")
        assert (entry["who"], entry["after"]["decision"]) == ("anna", "not_a_refusal")
        with pytest.raises(UserError, match="one of"):
            sms_inbox.decide(store, msg["id"], "whatever", who="anna", source="test")
        with pytest.raises(UserError, match="decided already"):
            sms_inbox.decide(store, msg["id"], "refusal_recorded", who="anna", source="test")
        assert store.db.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0
        # A stranger's message is kept too, matched to nobody.
        sim.receive_sms("+79995550000", "Кто это?")
        await until(lambda: len(sms_inbox.received(store)) == 2 and not sim._inbox, timeout=30)
        stranger = sms_inbox.received(store)[0]
        assert (stranger["account_pk"], stranger["stop_word"]) == (None, None)
        assert [m["text"] for m in sms_inbox.of_account(store, account_pk)] == \
            ["СТОП. Не пишите мне"]
        sim.receive_sms("+79995551111", "STOP")  # a refusal from a number on no account
        await until(lambda: len(sms_inbox.received(store, flagged=True)) == 1, timeout=30)
        [unknown] = sms_inbox.received(store, flagged=True)
        with pytest.raises(UserError, match="on no account"):
            sms_inbox.decide(store, unknown["id"], "refusal_recorded", who="anna", source="t")
    finally:
        await inbox.stop()
        await lines.stop()


async def test_a_crash_between_keeping_and_deleting_loses_nothing_and_keeps_it_once(box):
    store, sim = box["store"], box["sim"]
    lines, inbox = await _lines(box)

    async def crash(line: str, uid: str) -> None:  # the box dies right after the commit
        await asyncio.Event().wait()
    lines.sms_stored = crash
    sim.receive_sms("+79001112233", "Оплачу в пятницу")
    await until(lambda: len(_rows(box["path"])) == 1)
    await asyncio.sleep(0.2)
    assert len(sim._inbox) == 1  # kept by the store and still on the SIM
    await inbox.stop()
    await lines.stop()
    store.close()
    # The box starts again on the same SIM: the message is handed up again and kept once.
    box["store"] = store = Store(box["path"], box["clock"])
    lines, inbox = await _lines(box)
    try:
        await until(lambda: not sim._inbox, timeout=30)
        assert [r[1] for r in _rows(box["path"])] == ["Оплачу в пятницу"]
        assert inbox.kept == 0  # nothing new: the store had it
    finally:
        await inbox.stop()
        await lines.stop()


async def test_a_store_that_fails_leaves_the_message_on_the_sim(box):
    store, sim = box["store"], box["sim"]
    lines, inbox = await _lines(box)

    async def broken(fn, *a, **kw):
        raise sqlite3.OperationalError("disk I/O error")
    store.run = broken
    try:
        sim.receive_sms("+79001112233", "Перезвоните")
        await until(lambda: "AT+CMGR=1" in sim.commands)
        await asyncio.sleep(0.3)
        assert len(sim._inbox) == 1 and not any(c.startswith("AT+CMGD") for c in sim.commands)
    finally:
        await inbox.stop()
        await lines.stop()


@pytest.mark.slow
async def test_on_the_simulated_box_a_debtors_reply_reaches_the_store_and_leaves_the_sim(tmp_path):
    from dialbox.appliance import Appliance, Settings
    app = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                             seed=5, compliance="none"))
    await app.start()
    try:
        pk, e164 = app.store.db.execute("SELECT account_pk, e164 FROM phones ORDER BY id LIMIT 1"
                                        ).fetchone()
        sim = app.sims[0]
        await until(lambda: any(c.startswith("AT+CMGL") for c in sim.commands))
        sim.receive_sms("8" + e164[2:], "Отказ. Не звоните больше")
        await until(lambda: not sim._inbox and sms_inbox.of_account(app.store, pk))
        [msg] = sms_inbox.of_account(app.store, pk)
        assert (msg["text"], msg["stop_word"]) == ("Отказ. Не звоните больше", "отказ")
        assert msg["line"] == app.lines.channels[0].name
        # The operator who talks to this debtor sees it on the desk's card, flagged.
        from web_admin.desk import readable
        card = app._card(pk)
        assert [(m["text"], m["flagged"]) for m in card["sms_received"]] == \
            [("Отказ. Не звоните больше", True)]
        shown = readable({"call": {"account": card}}, "ru")["call"]["account"]
        assert shown["sms_received"][0]["at_text"][2] == "."  # a local date, not a time stamp
    finally:
        await app.stop()


async def test_a_received_sms_carries_the_networks_time_from_the_boxs_clock(box, monkeypatch):
    """The simulated network stamps an SMS with the one clock: with the clock five years ahead
    the message says so, whatever today's date is."""
    store, sim, clock = box["store"], box["sim"], box["clock"]
    real_wall = clock.wall
    monkeypatch.setattr(clock, "wall", lambda: real_wall() + 5 * 365 * 86400.0)
    lines, inbox = await _lines(box)
    try:
        sim.receive_sms("+79001112233", "Оплачу завтра")
        await until(lambda: len(_rows(box["path"])) == 1 and not sim._inbox)
        sent_at = store.db.execute("SELECT sent_at FROM sms_inbox").fetchone()[0]
        assert abs(sent_at - sim.clock.wall()) < 120, (sent_at, sim.clock.wall())
    finally:
        await inbox.stop()
        await lines.stop()
