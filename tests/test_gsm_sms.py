"""SMS through the real driver and the simulated modem: Russian text, long messages, reports."""
from __future__ import annotations

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
async def test_inbound_long_sms_is_read_deleted_and_joined(dialect):
    async with modem_and_driver(dialect) as (sim, drv, rec):
        events = []
        drv.on_sms = events.append
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        assert sim.receive_sms("+79001112233", LONG_RU) == 2
        await until(lambda: any(isinstance(e, InboundSms) for e in events))
        msg = next(e for e in events if isinstance(e, InboundSms))
        assert msg.sender == "+79001112233" and msg.text == LONG_RU
        await until(lambda: not sim._inbox)  # deleted from the SIM after reading


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
