"""Q.921: frame codec, and the data link between a user and a network side over faulty wires."""
from __future__ import annotations

import asyncio
import os
import random
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.clock import Clock
from firmware.e1.lapd import DataLink, Frame, LinkState, LinkTimers, Role, decode_frame
from firmware.e1.q931 import DecodeError
from firmware.e1.transports import (FdFrameTransport, HdlcFramer, StreamFrameTransport, fcs16,
                                    with_fcs)


def test_known_frames():
    assert Frame("SABME", 0, pf=1).encode() == bytes.fromhex("00 01 7f")  # user command
    assert Frame("UA", 0, pf=1).encode() == bytes.fromhex("00 01 73")  # network response
    assert Frame("I", 0, ns=3, nr=5, pf=1, info=b"\x08").encode() == bytes.fromhex("00 01 06 0b 08")
    assert Frame("RR", 1, nr=127).encode() == bytes.fromhex("02 01 01 fe")
    assert decode_frame(bytes.fromhex("02 01 01 fe")) == Frame("RR", 1, nr=127)
    assert decode_frame(bytes.fromhex("00 01 53")) == Frame("DISC", 0, pf=1)


frames = st.one_of(
    st.builds(Frame, st.just("I"), st.integers(0, 1), st.integers(0, 63), st.integers(0, 127),
              st.integers(0, 1), st.integers(0, 127), st.integers(0, 127), st.binary(max_size=40)),
    st.builds(Frame, st.sampled_from(["RR", "RNR", "REJ"]), st.integers(0, 1),
              st.integers(0, 63), st.integers(0, 127), st.integers(0, 1), st.just(0),
              st.integers(0, 127)),
    st.builds(Frame, st.sampled_from(["SABME", "UA", "DISC", "DM", "FRMR", "UI", "XID"]),
              st.integers(0, 1), st.integers(0, 63), st.integers(0, 127), st.integers(0, 1),
              info=st.binary(max_size=10)),
)


@given(frames)
def test_frames_round_trip(frame):
    assert decode_frame(frame.encode()) == frame


@settings(max_examples=500)
@given(st.binary(max_size=12))
def test_arbitrary_bytes_raise_only_decode_error(data):
    try:
        decode_frame(data)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)


def test_fcs16_check_value():
    assert fcs16(b"123456789") == 0x906E  # CRC-16/X-25 check value


class Wire:
    """Connects two data links; drops a share of frames both ways, delivers the rest later."""

    def __init__(self, loss: float = 0.0, seed: int = 0, delay: float = 0.0) -> None:
        self.loss, self.rng, self.delay = loss, random.Random(seed), delay
        self.cut = False
        self.sent: list[tuple[str, bytes]] = []
        self.ends: dict[str, DataLink] = {}

    def sender(self, src: str, dst: str):
        def send(raw: bytes) -> None:
            self.sent.append((src, raw))
            if self.cut or self.rng.random() < self.loss:
                return
            loop = asyncio.get_running_loop()
            loop.call_later(self.delay, self.ends[dst].receive, raw)
        return send


def pair(wire: Wire, clock: Clock, timers: LinkTimers | None = None):
    user = DataLink(Role.USER, wire.sender("u", "n"), clock=clock, timers=timers, name="u")
    net = DataLink(Role.NETWORK, wire.sender("n", "u"), clock=clock, timers=timers,
                   initiate=False, name="n")
    wire.ends.update(u=user, n=net)
    got = {"u": [], "n": []}
    user.on_message = got["u"].append
    net.on_message = got["n"].append
    return user, net, got


async def until(cond, real_s: float = 5.0) -> None:
    for _ in range(int(real_s / 0.005)):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


async def test_establishment_uses_sabme_ua_with_right_cr_bits():
    wire = Wire()
    user, net, _ = pair(wire, Clock(20))
    user.start()
    net.start()
    await until(lambda: user.is_up and net.is_up)
    assert [(s, decode_frame(r).kind, decode_frame(r).cr) for s, r in wire.sent[:2]] == [
        ("u", "SABME", 0), ("n", "UA", 0)]
    user.stop()
    net.stop()


@pytest.mark.parametrize("loss", [0.0, 0.1, 0.25])
async def test_messages_arrive_once_in_order_despite_loss(loss):
    wire = Wire(loss=loss, seed=7, delay=0.001)
    # N200 raised so that loss is recovered by retransmission, never by a link reset.
    user, net, got = pair(wire, Clock(50), LinkTimers(n200=12))
    user.start()
    net.start()
    await until(lambda: user.is_up and net.is_up, 20)
    out_u = [b"u%03d" % i for i in range(150)]
    out_n = [b"n%03d" % i for i in range(150)]
    for a, b in zip(out_u, out_n):
        user.send_message(a)
        net.send_message(b)
    await until(lambda: len(got["n"]) == 150 and len(got["u"]) == 150, 60)
    assert got["n"] == out_u and got["u"] == out_n
    assert user.counters["establishments"] == 1  # recovered without a link reset
    if loss:
        assert user.counters["retransmissions"] + net.counters["retransmissions"] > 0
    user.stop()
    net.stop()


async def test_window_never_exceeds_k_outstanding_frames():
    wire = Wire(delay=0.02)
    user, net, got = pair(wire, Clock(1), LinkTimers(k=7))
    user.start()
    net.start()
    await until(lambda: user.is_up and net.is_up)
    start = len(wire.sent)
    for i in range(30):
        user.send_message(b"%d" % i)
    # Before any acknowledgement arrives only k I-frames may be on the wire.
    assert [decode_frame(r).kind for s, r in wire.sent[start:]] == ["I"] * 7
    await until(lambda: len(got["n"]) == 30)
    ns = [decode_frame(r).ns for s, r in wire.sent if s == "u" and decode_frame(r).kind == "I"]
    assert ns == list(range(30))
    user.stop()
    net.stop()


async def test_sequence_numbers_wrap_modulo_128():
    wire = Wire()
    user, net, got = pair(wire, Clock(50))
    user.start()
    net.start()
    await until(lambda: user.is_up and net.is_up)
    for i in range(300):
        user.send_message(b"%d" % i)
    await until(lambda: len(got["n"]) == 300, 20)
    assert got["n"] == [b"%d" % i for i in range(300)]
    user.stop()
    net.stop()


async def test_silent_peer_is_lost_after_n200_and_link_comes_back():
    wire = Wire()
    clock = Clock(50)
    user, net, got = pair(wire, clock, LinkTimers(t200=1.0, n200=3, t203=10.0, reestablish=2.0))
    downs: list[str] = []
    user.on_down = downs.append
    user.start()
    net.start()
    await until(lambda: user.is_up and net.is_up)
    wire.cut = True
    user.send_message(b"lost")
    await until(lambda: downs, 5)
    assert "T200" in downs[0]
    polls = [decode_frame(r) for s, r in wire.sent if s == "u"]
    assert sum(1 for f in polls if f.kind == "RR" and f.pf) == 3  # N200 enquiries
    wire.cut = False
    await until(lambda: user.is_up and net.is_up, 5)
    user.send_message(b"after")
    await until(lambda: got["n"] and got["n"][-1] == b"after")
    user.stop()
    net.stop()


async def test_idle_link_is_polled_after_t203_and_stays_up():
    wire = Wire()
    user, net, _ = pair(wire, Clock(100), LinkTimers(t203=10.0))
    user.start()
    net.start()
    await until(lambda: user.is_up and net.is_up)
    await asyncio.sleep(0.25)  # 25 simulated seconds: two T203 periods
    polls = [decode_frame(r) for s, r in wire.sent if s == "u"]
    assert sum(1 for f in polls if f.kind == "RR" and f.pf) >= 2
    assert user.state is LinkState.ESTABLISHED and net.is_up
    user.stop()
    net.stop()


async def test_rnr_holds_transmission_until_rr():
    wire = Wire()
    user, net, got = pair(wire, Clock(1))
    user.start()
    net.start()
    await until(lambda: user.is_up and net.is_up)
    user.receive(Frame("RNR", 1, nr=0).encode())  # network command: receiver busy
    user.send_message(b"held")
    await asyncio.sleep(0.02)
    assert got["n"] == []
    user.receive(Frame("RR", 1, nr=0).encode())
    await until(lambda: got["n"] == [b"held"])
    user.stop()
    net.stop()


async def test_disc_releases_and_sabme_resets_the_link():
    wire = Wire()
    user, net, _ = pair(wire, Clock(50), LinkTimers(reestablish=0.5))
    downs: list[str] = []
    user.on_down = downs.append
    user.start()
    net.start()
    await until(lambda: user.is_up and net.is_up)
    user.receive(Frame("DISC", 1, pf=1).encode())
    assert downs == ["peer released the link"] and not user.is_up
    await until(lambda: user.is_up)  # the user side establishes again by itself
    user.stop()
    net.stop()


def test_hdlc_framer_escapes_checks_fcs_and_survives_byte_by_byte():
    frames = [bytes([0x00, 0x01, 0x7E, 0x7D, 0x11, 0x13]), bytes(range(0, 40))]
    wire = b"".join(HdlcFramer.encode(f) for f in frames)
    assert wire.count(0x7E) == 4  # only flags carry 0x7E
    framer = HdlcFramer()
    got = [f for b in wire for f in framer.feed(bytes([b]))]
    assert got == frames
    bad = bytearray(HdlcFramer.encode(frames[1]))
    bad[5] ^= 0x01
    assert framer.feed(bytes(bad)) == [] and framer.bad_frames == 1


async def test_seqpacket_transport_adds_and_strips_two_fcs_bytes():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    tr = FdFrameTransport(sock=a)
    got: list[bytes] = []
    tr.on_frame = got.append
    await tr.open()
    tr.send(b"\x00\x01\x7f")
    assert b.recv(100) == with_fcs(b"\x00\x01\x7f")
    b.send(b"\x02\x01\x73" + b"\xaa\xbb")
    await until(lambda: got == [b"\x02\x01\x73"])
    await tr.close()
    b.close()


async def test_tcp_transport_reassembles_split_length_prefixed_frames():
    got: list[bytes] = []
    writers = []

    async def serve(reader, writer):
        writers.append(writer)
        data = b"".join(len(f).to_bytes(2, "big") + f for f in (b"\x00\x01\x7f", b"abcd"))
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tr = StreamFrameTransport("tcp", port=port)
    tr.on_frame = got.append
    await tr.open()
    await until(lambda: got == [b"\x00\x01\x7f", b"abcd"])
    await tr.close()
    for w in writers:
        w.close()
    server.close()
    await server.wait_closed()


async def test_serial_transport_over_a_pty_speaks_async_hdlc():
    master, slave = os.openpty()
    got: list[bytes] = []
    tr = StreamFrameTransport("serial", device=os.ttyname(slave), baudrate=115200)
    tr.on_frame = got.append
    await tr.open()
    os.write(master, HdlcFramer.encode(b"\x02\x01\x73"))
    await until(lambda: got == [b"\x02\x01\x73"])
    tr.send(b"\x00\x01\x7f")
    await asyncio.sleep(0.05)
    assert HdlcFramer().feed(os.read(master, 100)) == [b"\x00\x01\x7f"]
    await tr.close()
    os.close(master)
    os.close(slave)


async def test_dahdi_style_descriptor_reads_one_frame_per_read():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    fd = os.dup(a.fileno())
    tr = FdFrameTransport(fd)  # a bare descriptor, read with os.read like a DAHDI device
    got: list[bytes] = []
    tr.on_frame = got.append
    await tr.open()
    b.send(with_fcs(b"\x02\x01\x73"))
    b.send(with_fcs(b"\x02\x01\x01\x02"))
    await until(lambda: got == [b"\x02\x01\x73", b"\x02\x01\x01\x02"])
    tr.send(b"\x00\x01\x7f")
    assert b.recv(100) == with_fcs(b"\x00\x01\x7f")
    lost: list[str] = []
    tr.on_lost = lost.append
    b.close()
    await until(lambda: lost)
    await tr.close()
    os.close(fd)
    a.close()


async def test_missing_dahdi_device_is_a_clear_connection_error(tmp_path):
    tr = FdFrameTransport(path=str(tmp_path / "dahdi" / "channel" / "16"))
    with pytest.raises(ConnectionError, match="cannot open D-channel device .*16"):
        await tr.open()
