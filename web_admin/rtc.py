"""The operator's headset over WebRTC: one aiortc peer connection per desk, kept for the shift.

The box offers (so its codec preferences decide: G.711 first, PCMA/PCMU pass E1 audio through
untranscoded, Opus allowed) over the desk's WebSocket; the browser answers with its microphone.
The peer connection is tied to the operator's position leg in the media plane: what the browser
sends is pushed into the leg, and an outgoing track's ``recv()`` takes the leg's 20 ms frames as
the plane's tick produces them. Connecting a call is a switch in the plane, so nothing here is
renegotiated between calls. When the browser's audio stops (network, closed tab, microphone
lost) the desk is reported down at once with that reason; the page reconnects by itself.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import queue
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Awaitable, Callable, Iterable

import av
import structlog
from aiortc import (MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender,
                    RTCSessionDescription)
from aiortc.mediastreams import MediaStreamError

from firmware.errors import UserError

log = structlog.get_logger(__name__)

RATE, SAMPLES, FRAME_BYTES = 8000, 160, 320
CODEC_ORDER = ("audio/PCMA", "audio/PCMU", "audio/opus")
SILENT_S = 1.0  # no audio from the browser this long: the desk is down ("network")
OUT_QUEUE = 3  # frames the outgoing track may hold; more means the sender stalls: drop the oldest
TIME_BASE = Fraction(1, RATE)
REASONS = ("network", "tab_closed", "microphone", "replaced", "stopped")


@dataclass(frozen=True)
class MediaNetworks:
    """The box's media addresses with their networks (``192.168.1.10/24``); only browsers on
    these networks are offered and accepted as ICE candidates."""
    interfaces: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = ()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> "MediaNetworks":
        out = []
        for text in texts:
            try:
                out.append(ipaddress.ip_interface(text.strip()))
            except ValueError:
                raise ValueError(f"media address {text!r}: expected ADDRESS/PREFIX, "
                                 "e.g. 192.168.1.10/24") from None
        return cls(tuple(out))

    @classmethod
    def of_this_box(cls) -> "MediaNetworks":
        """Every non-loopback, non-link-local address of the box with its network."""
        import ifaddr
        out = []
        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
                iface = ipaddress.ip_interface(f"{text}/{ip.network_prefix}")
                if not (iface.ip.is_loopback or iface.ip.is_link_local):
                    out.append(iface)
        return cls(tuple(out))

    @property
    def addresses(self) -> list[str]:
        return [str(i.ip) for i in self.interfaces]

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:  # an mDNS name (.local) or garbage: not on our networks
            return False
        return any(ip in i.network for i in self.interfaces)

    def install(self) -> None:
        """Make aioice gather host candidates on these addresses only (it skips 127.0.0.1 by
        itself; a test on loopback sets it here)."""
        import aioice.ice
        addresses = self.addresses
        aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: [
            a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    def filter_sdp(self, sdp: str) -> tuple[str, int]:
        """The SDP without candidates outside the media networks; and how many were dropped."""
        kept, dropped = [], 0
        for line in sdp.splitlines():
            if line.startswith("a=candidate:"):
                parts = line.split()
                if len(parts) < 8 or not self.allows(parts[4]):
                    dropped += 1
                    continue
            kept.append(line)
        return "\r\n".join(kept) + "\r\n", dropped


class PlaneTrack(MediaStreamTrack):
    """Audio to the browser: each ``recv()`` is the next 20 ms frame the plane made for the leg."""

    kind = "audio"

    def __init__(self, leg) -> None:
        super().__init__()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._pts = 0
        self.dropped = 0
        self.last = b""  # the frame handed to the sender last
        self._remove = leg.on_output(self._frame)
        # With G.711 negotiated the box sends the plane's frame as A-law/mu-law itself (the
        # media core's codec): aiortc packs it as is, no resampler, no encoder thread per frame.
        self.g711: Callable[[bytes], bytes] | None = None

    def _frame(self, pcm: bytes) -> None:
        q = self._queue
        if q.qsize() >= OUT_QUEUE:  # the sender fell behind: stay near real time, never burst
            q.get_nowait()
            self.dropped += 1
        q.put_nowait(pcm)

    async def recv(self) -> av.AudioFrame | av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        pcm = self.last = await self._queue.get()
        out = audio_out(pcm, self._pts, self.g711)
        self._pts += SAMPLES
        return out

    def stop(self) -> None:
        super().stop()
        self._remove()


def audio_out(pcm: bytes, pts: int, g711: Callable[[bytes], bytes] | None
              ) -> av.AudioFrame | av.Packet:
    """A 20 ms frame for aiortc's sender: G.711 bytes it packs as they are, else a frame it
    encodes (Opus)."""
    if g711 is not None:
        out = av.Packet(g711(pcm))
    else:
        out = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        out.planes[0].update(pcm)
        out.sample_rate = RATE
    out.pts = pts
    out.time_base = TIME_BASE
    return out


def _to_plane(frame: av.AudioFrame, resampler: av.AudioResampler | None) -> bytes:
    """A decoded browser frame as 8 kHz mono s16le (G.711 frames already are)."""
    if (frame.format.name == "s16" and frame.sample_rate == RATE
            and len(frame.layout.channels) == 1):
        return bytes(frame.planes[0])[:frame.samples * 2]
    assert resampler is not None
    return b"".join(bytes(f.planes[0])[:f.samples * 2] for f in resampler.resample(frame))


Notify = Callable[[bool, str], Awaitable[None] | None]


class InlineG711:
    """Stands in for an aiortc receiver's decoder queue when G.711 was negotiated: each frame
    out of its jitter buffer is decoded here, on the loop, by the media core and handed on at
    once. aiortc would decode it on a thread and post it back to the loop (a thread hop and an
    av.AudioFrame per 20 ms per desk: the most of a desk's cost at 60 desks). The receiver's
    idle decoder thread waits on :meth:`get` until the receiver stops (``put(None)``)."""

    def __init__(self, on_pcm: Callable[[bytes], None] | None,
                 decode: Callable[[bytes], bytes]) -> None:
        self._end: queue.Queue = queue.Queue()
        self.on_pcm = on_pcm  # None: the frames are only counted (the benchmark's browsers)
        self.decode = decode
        self.frames = 0

    def put(self, item) -> None:
        if item is None:
            self._end.put(None)
            return
        self.frames += 1
        if self.on_pcm is not None:
            self.on_pcm(self.decode(item[1].data))

    def get(self):
        return self._end.get()

    @staticmethod
    def install(receiver, on_pcm: Callable[[bytes], None] | None, codec: str | None
                ) -> "InlineG711 | None":
        """Put one on ``receiver`` (before its ``receive()``: right after the remote
        description is set) when ``codec`` is PCMA or PCMU; None otherwise."""
        from cext import media as core
        decode = {"PCMA": core.alaw_decode, "PCMU": core.ulaw_decode}.get(codec or "")
        if decode is None or getattr(receiver, "_RTCRtpReceiver__decoder_thread", 1) is not None:
            return None
        inline = InlineG711(on_pcm, decode)
        receiver._RTCRtpReceiver__decoder_queue = inline
        return inline


@dataclass
class DeskMedia:
    """One operator's headset: the peer connection of the shift, bound to the position leg."""

    username: str
    leg: object  # firmware.media.plane.Leg: push(), on_output(), plane.clock
    networks: MediaNetworks
    notify: Notify  # (up, reason): the backend pauses the operator when down
    send: Callable[[dict], Awaitable[None]] | None = None  # to the page, over the desk's socket
    pc: RTCPeerConnection | None = None
    up: bool = False
    reason: str = "network"
    codec: str | None = None
    frames_in: int = 0
    _track: PlaneTrack | None = None
    _tasks: set = field(default_factory=set)
    _last_in: float = 0.0
    _generation: int = 0
    _capture: bytearray | None = None  # the headset check records the microphone here
    _buf: bytearray = field(default_factory=bytearray)  # browser audio short of a whole frame
    owner: object = None  # the socket of the page that holds this desk's audio now

    @property
    def clock(self):
        return self.leg.plane.clock

    async def offer(self) -> dict:
        """A new peer connection (replacing the shift's previous one) and the box's offer."""
        await self._close_pc("replaced", notify=False)
        self._generation += 1
        gen = self._generation
        self._buf.clear()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        self._track = PlaneTrack(self.leg)
        transceiver = pc.addTransceiver(self._track, direction="sendrecv")
        codecs = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences(
            sorted((c for c in codecs if c.mimeType in CODEC_ORDER),
                   key=lambda c: CODEC_ORDER.index(c.mimeType)))

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "audio" and gen == self._generation:
                self._spawn(self._read(track, gen))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if gen != self._generation:
                return
            if pc.connectionState == "failed":
                await self._down("network")

        await pc.setLocalDescription(await pc.createOffer())
        return {"type": "offer", "sdp": pc.localDescription.sdp}

    async def answer(self, sdp: str) -> None:
        """The browser's answer; its candidates outside the media networks are dropped."""
        if self.pc is None or self.pc.signalingState != "have-local-offer":
            raise ValueError("no offer is waiting for an answer")
        sdp, dropped = self.networks.filter_sdp(sdp)
        if dropped:
            log.info("rtc_candidates_dropped", user=self.username, dropped=dropped)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        transceiver = self.pc.getTransceivers()[0]
        codecs = transceiver._codecs
        self.codec = codecs[0].mimeType.split("/")[1] if codecs else None
        InlineG711.install(transceiver.receiver, self._heard, self.codec)
        if self._track is not None:
            from cext import media as core
            self._track.g711 = {"PCMA": core.alaw_encode, "PCMU": core.ulaw_encode}.get(
                self.codec or "")
        self._last_in = self.clock.now()
        self._spawn(self._watch(self._generation))

    async def handle(self, msg: dict) -> None:
        """A message from the page: hello (give me audio), answer, mic state, bye."""
        kind = msg.get("rtc")
        if kind == "hello":
            offer = await self.offer()
            if self.send is not None:
                await self.send({"rtc": offer})
        elif kind == "answer":
            await self.answer(str(msg.get("sdp", "")))
        elif kind == "mic":
            if msg.get("ok") is False:
                await self._down("microphone")
        elif kind == "check":
            if self.leg.plane.peer(self.leg) is not None:
                raise UserError("the headset check is not possible during a call")
            self._spawn(self.check_headset())
        elif kind == "bye":
            await self.close("tab_closed")

    async def check_headset(self, *, speak_s: float = 3.0) -> None:
        """Before the shift: a tone, then what the microphone says is played back through the
        box (the whole path, not just the PC's sound card). Never during a call."""
        plane, leg = self.leg.plane, self.leg
        await self._tell({"type": "check", "step": "tone"})
        await plane.play(leg, _tone(440.0, 1.0))
        await self._tell({"type": "check", "step": "speak"})
        self._capture = bytearray()
        await self.clock.sleep(speak_s)
        said, self._capture = bytes(self._capture), None
        await self._tell({"type": "check", "step": "playback"})
        if plane.peer(leg) is None:
            await plane.play(leg, said)
        await self._tell({"type": "check", "step": "done", "heard_mic": any(said)})

    async def close(self, reason: str = "stopped") -> None:
        await self._close_pc(reason, notify=True)

    # --- inside ---------------------------------------------------------------------------
    async def _read(self, track, gen: int) -> None:
        """Frames the track decoded (Opus; G.711 comes through :class:`InlineG711` instead:
        then this only waits for the track's end)."""
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        try:
            while gen == self._generation:
                self._heard(_to_plane(await track.recv(), resampler))
        except MediaStreamError:
            if gen == self._generation:
                await self._down("network")

    def _heard(self, pcm: bytes) -> None:
        """Audio from the browser, into the position leg a 20 ms frame at a time."""
        self._last_in = self.clock.now()
        if not self.up:
            self.up = True
            self.reason = ""
            log.info("desk_audio_up", user=self.username, codec=self.codec)
            self._spawn(self._announce_up(self._generation))
        buf = self._buf
        buf += pcm
        while len(buf) >= FRAME_BYTES:
            frame = bytes(buf[:FRAME_BYTES])
            del buf[:FRAME_BYTES]
            self.leg.push(frame)
            self.frames_in += 1
            if self._capture is not None:
                self._capture += frame

    async def _announce_up(self, gen: int) -> None:
        if gen == self._generation and self.up:
            await _maybe(self.notify(True, ""))
            await self._tell(self.state())

    async def _watch(self, gen: int) -> None:
        """Silence from the browser for SILENT_S: down at once, long before ICE gives up."""
        while gen == self._generation:
            await self.clock.sleep(0.25)
            if gen == self._generation and self.up and (
                    self.clock.now() - self._last_in > SILENT_S):
                await self._down("network")

    async def _down(self, reason: str) -> None:
        if self.up or self.reason != reason:
            was_up, self.up, self.reason = self.up, False, reason
            log.info("desk_audio_down", user=self.username, reason=reason, was_up=was_up)
            await _maybe(self.notify(False, reason))
            await self._tell(self.state())

    def state(self) -> dict:
        return {"type": "state", "up": self.up, "reason": self.reason, "codec": self.codec}

    async def _tell(self, msg: dict) -> None:
        if self.send is not None:
            try:
                await self.send({"rtc": msg})
            except ConnectionError:  # the page is gone; it hears the state when it is back
                self.send = None

    async def _close_pc(self, reason: str, *, notify: bool) -> None:
        self._generation += 1
        pc, track, self.pc, self._track = self.pc, self._track, None, None
        if track is not None:
            track.stop()
        tasks = list(self._tasks)
        for t in tasks:
            if t is not asyncio.current_task():
                t.cancel()
        await asyncio.gather(*(t for t in tasks if t is not asyncio.current_task()),
                             return_exceptions=True)
        if pc is not None:
            await pc.close()
        if notify:
            await self._down(reason)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Desks:
    """Every desk's headset by user: one :class:`DeskMedia` each, for the shift."""

    def __init__(self, networks: MediaNetworks) -> None:
        self.networks = networks
        self.by_user: dict[str, DeskMedia] = {}

    def get(self, username: str) -> DeskMedia | None:
        return self.by_user.get(username)

    def open(self, username: str, leg, notify: Notify) -> DeskMedia:
        media = self.by_user.get(username)
        if media is None or media.leg is not leg:
            media = DeskMedia(username, leg, self.networks, notify)
            self.by_user[username] = media
        return media

    async def close_all(self) -> None:
        for media in list(self.by_user.values()):
            await media.close("stopped")
        self.by_user.clear()


def _tone(hz: float, seconds: float, amplitude: float = 6000.0) -> bytes:
    import math
    import struct
    n = int(seconds * RATE)
    return struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * hz * i / RATE))
                                   for i in range(n)))


async def headset_feed(request, snapshot: Callable, *, leg: Callable[[], Awaitable],
                       notify: Notify, silence_s: float | None = None, subscribe=None):
    """A live feed (web_admin.live.push_changes) whose socket also carries this person's
    headset: WebRTC signalling in, the box's offer and audio state out. One headset per person:
    a second window takes it over; the socket closing takes it down (1001: the tab closed)."""
    from web_admin.live import push_changes
    from web_admin.render import DESKS, USER, message_of
    username = request[USER]["username"]
    desks: Desks = request.app[DESKS]

    async def tell(ws, msg: dict) -> None:
        await ws.send_str(json.dumps({"rtc": msg}, ensure_ascii=False))

    async def on_message(ws, msg: dict) -> None:
        if "rtc" not in msg:
            return
        media = desks.get(username)
        if media is None or media.owner is not ws:
            try:
                audio_leg = await leg()
            except UserError as exc:  # no audio on this box (or no position): say it, calmly
                await tell(ws, {"type": "state", "up": False, "reason": "unavailable",
                                "message": message_of(request, exc)})
                return
            media = desks.open(username, audio_leg, notify)
            if media.owner is not None and media.owner is not ws:
                await media.close("replaced")  # the same person opened it in another window
            media.owner = ws
            media.send = lambda m: ws.send_str(json.dumps(m, ensure_ascii=False))
        try:
            await media.handle(msg)
        except (UserError, ValueError) as exc:  # out of turn (a check during a call, say)
            await tell(ws, {"type": "error", "message": message_of(request, exc)})

    async def on_close(ws) -> None:
        media = desks.get(username)
        if media is not None and media.owner is ws:
            media.owner = media.send = None
            await media.close("tab_closed" if ws.close_code == 1001 else "network")

    return await push_changes(request, snapshot, on_message=on_message, on_close=on_close,
                              silence_s=silence_s, subscribe=subscribe)


async def _maybe(result) -> None:
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        await result


def encode(msg: dict) -> str:
    return json.dumps(msg, ensure_ascii=False)
