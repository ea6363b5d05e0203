"""The browser's side of the desk audio in Python (aiortc): for tests and the benchmark.

It does what desk.js does with the box's offer: answers with a microphone track (here a tone,
paced like a real microphone) and reads what the box sends.
"""
from __future__ import annotations

import asyncio
import math
import struct

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from web_admin.rtc import FRAME_BYTES, RATE, SAMPLES, audio_out


class ToneTrack(MediaStreamTrack):
    """A microphone that says one tone, a 20 ms frame every 20 ms of loop time."""

    kind = "audio"

    def __init__(self, hz: float, amplitude: float = 6000.0) -> None:
        super().__init__()
        n = RATE // math.gcd(RATE, int(hz)) * SAMPLES  # whole periods, frame aligned
        self._pcm = struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * hz * i / RATE))
                                            for i in range(n)))
        self._pos = 0
        self._pts = 0
        self._start: float | None = None
        self.g711 = None  # set to an encoder (cext.media.alaw_encode): send packets, not frames

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self._pts / RATE - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._pcm[self._pos:self._pos + FRAME_BYTES]
        self._pos = (self._pos + FRAME_BYTES) % len(self._pcm)
        out = audio_out(chunk, self._pts, self.g711)
        self._pts += SAMPLES
        return out


class BrowserPeer:
    """An operator's browser: answers the box's offer with ``mic`` and keeps what it hears."""

    def __init__(self, mic: MediaStreamTrack, *, keep_s: float = 2.0,
                 codecs: tuple[str, ...] | None = None, listen: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = mic
        self.codecs = codecs  # the only codecs this browser takes (None: all it has)
        self.listen = listen  # False: count what arrives without converting it (benchmark)
        self.heard = bytearray()  # 8 kHz s16le mono, the last keep_s seconds
        self.frames = 0
        self._keep = int(keep_s * RATE) * 2
        self._reader: asyncio.Task | None = None
        self.on_frame = None  # optional callback(pcm bytes) per received frame
        self.counted = None  # listen=False with G.711: the frames arrived, counted, not decoded

        @self.pc.on("track")
        def on_track(track) -> None:
            self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def answer(self, offer: dict) -> str:
        if self.codecs:  # a browser that has only these: its transceiver made up front
            from aiortc import RTCRtpSender
            caps = RTCRtpSender.getCapabilities("audio").codecs
            self.pc.addTransceiver(self.mic, "sendrecv").setCodecPreferences(
                [c for c in caps if c.mimeType in self.codecs])
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        if not self.codecs:
            self.pc.addTrack(self.mic)  # takes the offered transceiver: sendrecv
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        if not self.listen:  # G.711 frames only counted, never decoded: a cheap browser
            from web_admin.rtc import InlineG711
            transceiver = self.pc.getTransceivers()[0]
            codec = transceiver._codecs[0].mimeType.split("/")[1] if transceiver._codecs else None
            self.counted = InlineG711.install(transceiver.receiver, None, codec)
        return self.pc.localDescription.sdp

    async def _read(self, track) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        try:
            while True:
                frame = await track.recv()
                if not self.listen:
                    self.frames += 1
                    continue
                for f in resampler.resample(frame):
                    pcm = bytes(f.planes[0])[:f.samples * 2]
                    self.frames += 1
                    if self.on_frame is not None:
                        self.on_frame(pcm)
                    self.heard += pcm
                    del self.heard[:-self._keep]
        except Exception:  # the connection closed
            return

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
