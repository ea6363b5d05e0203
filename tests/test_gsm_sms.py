"""SMS through the real driver and the simulated modem: Russian text, long messages, reports."""
from __future__ import annotations

import asyncio

import pytest

from firmware.lineapi import InboundSms, SmsStatus
from tests.gsmsim import modem_and_driver, until
from cext import linestate_codes as C

LONG_RU = ("Уважаемый клиент, напоминаем о задолженности по договору №12345. "
           "Пожалуйста, внесите платёж до 30 ноября.")  # > 70 chars: two UCS2 parts


DIALECTS = ["sim800", "sim7600", "ec25", "huawei", "generic"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_cyrillic_sms_over_70_chars_goes_as_two_parts_with_delivery_report(dialect):
    assert len(LONG_RU) > 70
    async with modem_and_driver(dialect) as (sim, drv, rec):
        events = []
        drv.on_sms = events.append
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        res = await drv.send_sms(0, "+79123456789", LONG_RU, sms_id="s1")
        assert res["status"] == "sent" and res["parts"] == 2 and len(res["references"]) == 2
        assert [p.number for p in sim.sms_sent] == ["+79123456789"] * 2
        assert "".join(p.text for p in sim.sms_sent) == LONG_RU
        assert all(p.concat is not None for p in sim.sms_sent)
        await until(lambda: sum(isinstance(e, SmsStatus) and e.status == "delivered"
                                for e in events) == 2)
        assert {e.sms_id for e in events} == {"s1"}


async def test_undeliverable_report_is_failed():
    async with modem_and_driver("sim800") as (sim, drv, rec):
        events = []
        drv.on_sms = events.append
        sim.sms_undeliverable.add("+79120000000")
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        await drv.send_sms(0, "+79120000000", "Test", sms_id="s2")
        await until(lambda: any(isinstance(e, SmsStatus) and e.status == "failed"
                                for e in events))


async def test_no_network_gives_a_classified_failure():
    async with modem_and_driver("sim800", health_interval_s=60) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        sim.registered = False  # quietly: the next SMS meets it
        res = await drv.send_sms(0, "+79123456789", "Test", sms_id="s3")
        assert res["status"] == "failed" and "331" in res["error"]
        assert res["action"] == "retry_later"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_inbound_long_sms_is_joined_and_leaves_the_sim_only_once_stored(dialect):
    async with modem_and_driver(dialect) as (sim, drv, rec):
        events = []
        drv.on_sms = events.append
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        assert sim.receive_sms("+79001112233", LONG_RU) == 2
        await until(lambda: any(isinstance(e, InboundSms) for e in events))
        msg = next(e for e in events if isinstance(e, InboundSms))
        assert msg.sender == "+79001112233" and msg.text == LONG_RU and msg.uid
        assert msg.sent_at is not None
        assert len(sim._inbox) == 2  # both parts wait on the SIM until the box has them
        await drv.sms_stored("some other message")  # not ours: nothing is deleted
        assert len(sim._inbox) == 2
        await drv.sms_stored(msg.uid)
        assert not sim._inbox and "AT+CMGD=1" in sim.commands and "AT+CMGD=2" in sim.commands
        await drv.sms_stored(msg.uid)  # told twice: the second time deletes nothing
        assert sum(c.startswith("AT+CMGD") for c in sim.commands) == 2


async def test_messages_left_on_the_sim_are_handed_up_again_after_a_restart():
    """A crash between the box keeping a message and deleting it: the next start lists the SIM
    and hands the message up again, with the same uid; one that arrived while the box was away
    comes up too."""
    async with modem_and_driver("sim800") as (sim, drv, rec):
        first = []
        drv.on_sms = first.append
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        sim.receive_sms("+79001112233", "СТОП")
        await until(lambda: any(isinstance(e, InboundSms) for e in first))
        await drv.stop()  # the box dies before it says "stored"
        sim.receive_sms("+79004445566", LONG_RU)  # nobody listening: kept on the SIM
        from firmware.gsm.driver import GsmModule
        from tests.gsmsim import Recorder
        again = GsmModule("gsm0", drv.port, drv.profile, drv.clock)
        events, rec2 = [], Recorder()
        again.on_sms = events.append
        await again.start(rec2)
        try:
            await until(lambda: len([e for e in events if isinstance(e, InboundSms)]) == 2)
            by_text = {e.text: e for e in events if isinstance(e, InboundSms)}
            assert by_text["СТОП"].uid == first[0].uid  # the same message: the store keeps one
            assert by_text[LONG_RU].sender == "+79004445566"
            assert len(sim._inbox) == 3
            for e in by_text.values():
                await again.sms_stored(e.uid)
            assert not sim._inbox
        finally:
            await again.stop()


@pytest.mark.parametrize("text", ["Payment due 30.11, thanks! @home", "Оплатите долг до 30.11"])
async def test_text_mode_single_part_gsm_and_ucs2_with_report(text):
    async with modem_and_driver("sim800", sms_mode="text") as (sim, drv, rec):
        events = []
        drv.on_sms = events.append
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        res = await drv.send_sms(0, "+79123456789", text, sms_id="t1")
        assert res["status"] == "sent" and res["mode"] == "text"
        assert sim.sms_text_sent == [("+79123456789", text)]
        assert "AT+CMGF=0" in sim.commands[-1:] or sim.st.cmgf == 0  # back in PDU mode
        await until(lambda: any(isinstance(e, SmsStatus) and e.status == "delivered"
                                for e in events))


async def test_text_mode_long_message_falls_back_to_pdu_parts():
    async with modem_and_driver("sim800", sms_mode="text") as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        res = await drv.send_sms(0, "+79123456789", LONG_RU, sms_id="t2")
        assert res["parts"] == 2 and "mode" not in res
        assert sim.sms_text_sent == [] and len(sim.sms_sent) == 2


async def test_a_long_sms_missing_a_part_goes_up_with_the_gap_marked_and_leaves_the_sim():
    from datetime import datetime, timezone
    from firmware.gsm import pdu as smspdu
    from firmware.gsm.concat import GAP
    text = LONG_RU * 2  # four UCS2 parts
    parts = smspdu.encode_deliver("+79001112233", text,
                                  timestamp=datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
    assert len(parts) == 4
    async with modem_and_driver("sim800", start_driver=False) as (sim, drv, rec):
        events = []
        drv.on_sms = events.append
        drv._inbox.part_timeout_s = 5.0  # box seconds (10 minutes on a real box)
        await drv.start(rec)
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        for index, part in ((1, parts[0]), (2, parts[2]), (3, parts[3])):  # no second part
            sim._inbox[index] = part.hex
            sim._urc(f'+CMTI: "SM",{index}')
        await until(lambda: any(isinstance(e, InboundSms) for e in events))
        [msg] = [e for e in events if isinstance(e, InboundSms)]
        assert GAP in msg.text and msg.text.startswith(text[:30])
        await drv.sms_stored(msg.uid)
        assert not sim._inbox


async def test_a_part_that_does_not_decode_is_read_again_then_left_on_the_sim():
    """A module that answers +CMGR in text mode while an SMS goes out that way: the part is read
    again on the next health checks (three tries), never lost, never deleted unread."""
    async with modem_and_driver("sim800") as (sim, drv, rec):
        events = []
        drv.on_sms = events.append
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        sim.receive_sms("+79001112233", "Оплачу завтра")
        good = sim._inbox[1]
        sim._inbox[1] = "0004"  # what the PDU reader makes of a text-mode answer
        sim._urc('+CMTI: "SM",1')
        await until(lambda: sum(c == "AT+CMGR=1" for c in sim.commands) >= 2)
        sim._inbox[1] = good  # the module answers in PDU mode again
        await until(lambda: any(isinstance(e, InboundSms) for e in events))
        [msg] = [e for e in events if isinstance(e, InboundSms)]
        assert msg.text == "Оплачу завтра" and len(sim._inbox) == 1
        sim.receive_sms("+79004445566", "x")
        sim._inbox[2] = "0004"  # never readable: three tries, then it stays for a person
        await until(lambda: sum(c == "AT+CMGR=2" for c in sim.commands) >= 3)
        await asyncio.sleep(1.5)  # three health checks more
        assert sum(c == "AT+CMGR=2" for c in sim.commands) == 3 and 2 in sim._inbox
        assert drv.in_service
