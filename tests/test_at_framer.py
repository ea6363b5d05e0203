"""The AT framer and the request engine's classification, on recorded byte strings."""
from __future__ import annotations

import asyncio

from hypothesis import given, settings, strategies as st

from firmware.gsm.engine import ATEngine, ATError, ATTimeout, LinkLost
from firmware.gsm.framer import PROMPT, ATFramer, is_final


def feed_all(chunks) -> list:
    f = ATFramer()
    out = []
    for c in chunks:
        out.extend(f.feed(c))
    return out


def test_lines_with_crlf_bare_lf_and_echo():
    assert feed_all([b"AT+CSQ\r\r\n+CSQ: 18,0\r\n\r\nOK\r\n"]) == ["AT+CSQ", "+CSQ: 18,0", "OK"]
    assert feed_all([b"\n+CREG: 0,1\nOK\n"]) == ["+CREG: 0,1", "OK"]


def test_sms_prompt_without_line_end_and_with_one():
    assert feed_all([b"\r\n> "]) == [PROMPT]
    assert feed_all([b"\r\n>", b" "]) == [PROMPT]
    assert feed_all([b">\r\n"]) == [PROMPT]


def test_garbage_does_not_hide_the_result():
    assert feed_all([b"\xff\xfe\x00\x91", b"\r\nOK\r\n"]) == ["OK"]
    f = ATFramer()
    assert list(f.feed(b"x" * 5000)) == []  # runaway garbage is dropped to resync
    assert f.dropped == 5000
    assert list(f.feed(b"\r\nOK\r\n")) == ["OK"]


FINALS = [b"OK", b"ERROR", b"+CME ERROR: 10", b"+CMS ERROR: 331", b"NO CARRIER", b"BUSY",
          b"NO ANSWER", b"NO DIALTONE"]


@settings(max_examples=300, deadline=None)
@given(noise=st.binary(max_size=64), final=st.sampled_from(FINALS), tail=st.binary(max_size=32),
       cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_any_split_never_raises_and_keeps_the_final(noise, final, tail, cuts):
    stream = noise + b"\r\n" + final + b"\r\n" + tail
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks, prev = [], 0
    for p in points + [len(stream)]:
        chunks.append(stream[prev:p])
        prev = p
    items = feed_all(chunks)
    assert final.decode() in items
    assert is_final(final.decode())


class FakeTransport(asyncio.Transport):
    """Records writes; the test plays the modem's side by calling data_received."""

    def __init__(self, engine: ATEngine) -> None:
        super().__init__()
        self.engine = engine
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True
        self.engine.connection_lost(None)


def make_engine():
    urcs = []
    lost = []
    e = ATEngine(lambda line, payload: urcs.append((line, payload)), lost.append, name="t")
    e.connection_made(FakeTransport(e))
    return e, urcs, lost


async def written(e: ATEngine) -> None:
    """The command in flight is on the wire (the engine writes it from its exchange task)."""
    for _ in range(50):
        if e._pending is not None:
            return
        await asyncio.sleep(0)
    raise AssertionError("the command was not written")


async def test_urc_in_the_middle_of_a_response_goes_to_the_urc_handler():
    e, urcs, _ = make_engine()
    task = asyncio.create_task(e.command("AT+CSQ"))
    await written(e)
    e.data_received(b"\r\n^RSSI:14\r\n\r\n+CSQ: 14,99\r\nRING\r\n\r\nOK\r\n")
    r = await task
    assert r.lines == ["+CSQ: 14,99"]
    assert ("^RSSI:14", None) in urcs and ("RING", None) in urcs


async def test_creg_answers_the_read_command_but_is_a_urc_otherwise():
    e, urcs, _ = make_engine()
    task = asyncio.create_task(e.command("AT+CREG?"))
    await written(e)
    e.data_received(b"\r\n+CREG: 0,1\r\n\r\nOK\r\n")
    assert (await task).first("+CREG:") == "0,1"
    e.data_received(b"\r\n+CREG: 2\r\n")
    assert urcs == [("+CREG: 2", None)]


async def test_bare_text_answer_belongs_to_the_command_in_flight():
    e, _, _ = make_engine()
    task = asyncio.create_task(e.command("AT+CGSN"))
    await written(e)
    e.data_received(b"AT+CGSN\r\r\n861234567890123\r\n\r\nOK\r\n")  # with echo
    assert (await task).lines == ["861234567890123"]


async def test_cme_error_is_raised_with_its_code():
    e, _, _ = make_engine()
    task = asyncio.create_task(e.command("AT+CPIN?"))
    await written(e)
    e.data_received(b"\r\n+CME ERROR: 10\r\n")
    try:
        await task
    except ATError as exc:
        assert exc.kind == "CME" and exc.code == 10
    else:
        raise AssertionError("ATError expected")


async def test_two_line_status_report_urc():
    e, urcs, _ = make_engine()
    e.data_received(b"\r\n+CDS: 25\r\n07919761989901F006")
    e.data_received(b"0B911326880736F4\r\n")
    assert urcs == [("+CDS: 25", "07919761989901F0060B911326880736F4")]


async def test_stale_ok_after_timeout_is_not_taken_for_the_next_answer():
    e, urcs, _ = make_engine()
    try:
        await e.command("AT+COPS?", timeout=0.05)
    except ATTimeout:
        pass
    e.data_received(b"\r\nOK\r\n")  # the late answer of the timed-out command
    task = asyncio.create_task(e.command("AT+CSQ", timeout=2))
    await asyncio.sleep(0.6)  # the engine waits out the quiet period before writing
    e.data_received(b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n")
    assert (await task).lines == ["+CSQ: 20,0"]
    assert e.stale_finals == 1


async def test_sms_prompt_then_payload_then_result():
    e, _, _ = make_engine()
    task = asyncio.create_task(e.command("AT+CMGS=18", payload=b"0011AABB"))
    await written(e)
    e.data_received(b"\r\n> ")
    for _ in range(10):
        await asyncio.sleep(0)
    assert e._transport.written.endswith(b"0011AABB\x1a")  # type: ignore[union-attr]
    e.data_received(b"\r\n+CMGS: 77\r\n\r\nOK\r\n")
    assert (await task).first("+CMGS:") == "77"


async def test_call_end_codes_without_command_are_urcs_and_lost_link_fails_pending():
    e, urcs, lost = make_engine()
    e.data_received(b"\r\nNO CARRIER\r\n")
    assert urcs == [("NO CARRIER", None)]
    task = asyncio.create_task(e.command("AT", timeout=5))
    await written(e)
    e._transport.close()  # type: ignore[union-attr]
    try:
        await task
    except LinkLost:
        pass
    else:
        raise AssertionError("LinkLost expected")
    assert lost == [None]


async def test_a_call_ending_while_a_poll_is_in_flight_is_the_calls_end_not_the_polls():
    e, urcs, _ = make_engine()
    task = asyncio.create_task(e.command("AT+CSQ", timeout=5))
    await written(e)
    e.data_received(b"\r\nNO CARRIER\r\n\r\n+CSQ: 20,0\r\n\r\nOK\r\n")
    assert (await task).lines == ["+CSQ: 20,0"]
    assert urcs == [("NO CARRIER", None)]
    dial = asyncio.create_task(e.command("ATD+79161234567;", timeout=5))
    await written(e)
    e.data_received(b"\r\nBUSY\r\n")  # a module that answers ATD only at the call's end
    try:
        await dial
    except ATError as exc:
        assert exc.final == "BUSY"
    else:
        raise AssertionError("ATError expected")


async def test_refusal_instead_of_the_prompt_ends_the_command_at_once():
    e, _, _ = make_engine()
    task = asyncio.create_task(e.command("AT+CMGS=18", payload=b"0011AABB", timeout=30))
    await written(e)
    e.data_received(b"\r\n+CMS ERROR: 331\r\n")
    try:
        await asyncio.wait_for(task, 1)
    except ATError as exc:
        assert exc.kind == "CMS" and exc.code == 331
    else:
        raise AssertionError("ATError expected")
    assert b"0011AABB" not in e._transport.written  # type: ignore[union-attr]


async def test_an_sms_given_up_at_its_prompt_is_cancelled_and_nothing_is_written_into_it():
    """The SMS sender is stopped while the module shows its "> " prompt: the payload is not
    sent, ESC leaves the prompt, and the next command waits for the module's answer to that
    (a dial written into the prompt would become the message's text)."""
    e, _, _ = make_engine()
    sms = asyncio.create_task(e.command("AT+CMGS=18", payload=b"0011AABB", timeout=30))
    await written(e)
    dial = asyncio.create_task(e.command("ATD+79161234567;", timeout=30))
    sms.cancel()
    e.data_received(b"\r\n> ")
    for _ in range(10):
        await asyncio.sleep(0)
    assert e._transport.written == b"AT+CMGS=18\r\x1b"  # type: ignore[union-attr]
    e.data_received(b"\r\nOK\r\n")  # the module left the prompt
    for _ in range(10):
        await asyncio.sleep(0)
    assert e._transport.written.endswith(b"\x1bATD+79161234567;\r")  # type: ignore[union-attr]
    e.data_received(b"\r\nOK\r\n")
    assert (await dial).final == "OK"
    assert sms.cancelled()


async def test_a_command_given_up_keeps_the_wire_until_its_answer_so_the_next_gets_its_own():
    e, _, _ = make_engine()
    cops = asyncio.create_task(e.command("AT+COPS?", timeout=30))
    await written(e)
    csq = asyncio.create_task(e.command("AT+CSQ", timeout=30))
    cops.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    assert e._transport.written == b"AT+COPS?\r"  # type: ignore[union-attr]
    e.data_received(b'\r\n+COPS: 0,0,"MTS"\r\n\r\nOK\r\n')  # the answer of the one given up
    for _ in range(10):
        await asyncio.sleep(0)
    assert e._transport.written.endswith(b"AT+CSQ\r")  # type: ignore[union-attr]
    e.data_received(b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n")
    assert (await csq).lines == ["+CSQ: 20,0"]


async def test_a_command_given_up_before_its_turn_is_never_written():
    e, _, _ = make_engine()
    first = asyncio.create_task(e.command("AT+CSQ", timeout=30))
    await written(e)
    second = asyncio.create_task(e.command("AT+CHUP", timeout=30))
    await asyncio.sleep(0)
    second.cancel()
    e.data_received(b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n")
    await first
    for _ in range(10):
        await asyncio.sleep(0)
    assert b"CHUP" not in e._transport.written  # type: ignore[union-attr]
    assert e._pending is None


async def test_interrupt_gives_up_the_exchange_for_a_reset():
    e, _, _ = make_engine()
    ussd = asyncio.create_task(e.command("AT+CMGS=18", payload=b"0011AABB", timeout=40))
    await written(e)
    e.interrupt()
    try:
        await asyncio.wait_for(ussd, 1)
    except ATTimeout as exc:
        assert "interrupted" in str(exc)
    else:
        raise AssertionError("ATTimeout expected")
    assert e._transport.written == b"AT+CMGS=18\r\x1b"  # type: ignore[union-attr]


async def test_an_error_about_a_dial_or_a_text_sms_never_names_the_number():
    """The errors of a dial or an SMS reach logs at WARNING and the lines page: the debtor's
    number is personal data and stays out of them."""
    e, _, _ = make_engine()
    try:
        await e.command("ATD+79161234567i;", timeout=0.05)
    except ATTimeout as exc:
        timed_out = str(exc)
    sms = asyncio.create_task(e.command('AT+CMGS="+79161234567"', payload=b"hi", timeout=5))
    await asyncio.sleep(0.6)  # the engine waits out the quiet period after the time-out
    await written(e)
    e.data_received(b"\r\n+CMS ERROR: 331\r\n")
    try:
        await sms
    except ATError as exc:
        refused = str(exc)
    dial = asyncio.create_task(e.command("ATD89161234567;", timeout=5))
    await written(e)
    e._transport.close()  # type: ignore[union-attr]
    try:
        await dial
    except LinkLost as exc:
        lost = str(exc)
    assert timed_out == "ATD…i;: no answer in 0.05s"
    assert refused == 'AT+CMGS="…": +CMS ERROR: 331'
    assert lost == "t: port closed during ATD…;"
