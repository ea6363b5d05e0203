"""The recorder's writer process: encodes every recording of the box and writes it to disk.

``python -m firmware.media.recorder_worker`` reads records from stdin and answers on stdout.
A record is a 9-byte header, ``op`` (1 byte), ``rec`` (uint32 LE: the recording's number) and
``n`` (uint32 LE: payload length), then the payload:

- ``O`` open: the payload is JSON {path, title, bitrate, complexity, page_s, fsync_s}; the file
  is fsynced after every ``fsync_s`` seconds of audio written (gaps included)
- ``D`` data: stereo s16le at 8 kHz (left: the debtor; right: what the debtor heard)
- ``G`` gap: the payload is uint32 LE samples of silence (audio the box dropped because this
  process was stalled): the recording keeps its time
- ``C`` close: the encoder is flushed, the file closed, fsynced and checksummed; the answer is one
  JSON line {rec, path, sha256, bytes, error}
- ``Q`` quit

It runs in its own process so that libopus and disk writes never hold the event loop (or its GIL).
When the box dies (EOF on stdin) every open recording is closed properly, so even ``kill -9`` of
the box loses nothing; when both die, the Ogg pages already written (every ``page_s``, straight to
the file) still play, and a power cut keeps what was fsynced: all but at most ``fsync_s`` of
audio plus the page being filled. The audio itself paces the fsync (8,000 samples a second,
arriving as the calls go): this process reads no clock.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import sys

HEADER = struct.Struct("<cII")
GAP = struct.Struct("<I")  # the payload of a gap record: samples of silence
RATE = 8000
# Two uncoupled mono Opus streams in one file (RFC 7845 channel mapping family 255: libopus's
# surround encoder then gives each channel a stream of its own), so the debtor's channel is
# encoded from the debtor's audio alone and the operator's from the operator's. A coupled stereo
# stream (family 0) narrows the stereo image at voice bitrates: each side bled into the other and
# steady voices smeared by up to 150 ms. CELT only ("lowdelay"): SILK drops steady tones in
# stretches and costs twice the CPU. ffmpeg and Chromium decode the file as two channels.
OPUS_OPTIONS = {"application": "lowdelay", "frame_duration": "60", "mapping_family": "255"}
PACKET = 480  # samples in one 60 ms packet


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


class _Rec:
    def __init__(self, spec: dict) -> None:
        import av
        self.path = spec["path"]
        # fsync after this many samples of audio (0: only at close); the audio is the pace
        self.fsync_every = int(float(spec.get("fsync_s", 5.0)) * RATE)
        self.unsynced = 0  # samples written (or muxed as silence) since the last fsync
        self.error = ""
        self.pts = 0
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.file = open(self.path, "wb", buffering=0)  # each Ogg page straight to the file
        self.container = av.open(self.file, "w", format="ogg", container_options={
            "page_duration": str(int(float(spec.get("page_s", 0.25)) * 1e6)),
            "flush_packets": "1"})
        st = self.container.add_stream("libopus", rate=RATE, layout="stereo", options=dict(
            OPUS_OPTIONS, compression_level=str(int(spec.get("complexity", 0)))))
        st.bit_rate = int(spec.get("bitrate", 24000))
        st.codec_context.format = "s16"
        self.stream = st
        self.container.metadata["title"] = str(spec.get("title", ""))
        self.muxed_to: int | None = None  # where the last packet muxed ends (file's samples)
        self.shift = 0  # samples of silence muxed as packets: the encoder's packets come later
        self._silence: bytes | None = None  # one packet of silence, encoded once when needed

    def write(self, data: bytes) -> None:
        import av
        n = len(data) // 4
        frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
        frame.sample_rate = RATE
        frame.planes[0].update(data)
        frame.pts = self.pts
        self.pts += n
        self._mux(self.stream.encode(frame))
        self._written(n)

    def _written(self, n: int) -> None:
        """``n`` more samples are in the file (or in the muxer's page): fsync when
        ``fsync_s`` of audio went in since the last one."""
        self.unsynced += n
        if self.fsync_every and self.unsynced >= self.fsync_every:
            os.fsync(self.file.fileno())
            self.unsynced = 0

    def _mux(self, packets) -> None:
        for packet in packets:
            if self.shift:
                packet.pts += self.shift
                packet.dts += self.shift
            self.muxed_to = packet.pts + packet.duration
            self.container.mux(packet)

    def gap(self, n: int) -> None:
        """``n`` samples of silence (audio the box could not send): whole packets of silence
        muxed as they are, not encoded (a stalled worker has no CPU to spare); only the part
        that does not fill a packet goes through the encoder."""
        import av
        # The encoder takes whole packets of input: fill the one it holds part of, so that
        # everything before the gap is muxed, then the silence, then what comes after.
        fill = n if self.muxed_to is None else min(n, (PACKET - self.pts % PACKET) % PACKET)
        if fill:  # (before the first packet is out, the gap all goes through the encoder)
            self.write(bytes(4 * fill))
        whole, rest = divmod(n - fill, PACKET)
        if whole:
            data = self._silence_packet()
            for _ in range(whole):
                packet = av.Packet(data)
                packet.pts = packet.dts = self.muxed_to
                packet.duration = PACKET
                packet.time_base = self.stream.codec_context.time_base
                packet.stream = self.stream
                self.container.mux(packet)
                self.muxed_to += PACKET
            self.shift += whole * PACKET
            self._written(whole * PACKET)
        if rest:
            self.write(bytes(4 * rest))

    def _silence_packet(self) -> bytes:
        if self._silence is None:
            import av
            cc = av.CodecContext.create("libopus", "w")
            cc.sample_rate, cc.layout, cc.format = RATE, "stereo", "s16"
            cc.bit_rate = self.stream.bit_rate
            cc.options = dict(OPUS_OPTIONS, compression_level="0")
            packets = []
            for k in range(4):
                frame = av.AudioFrame(format="s16", layout="stereo", samples=PACKET)
                frame.sample_rate, frame.pts = RATE, k * PACKET
                frame.planes[0].update(bytes(4 * PACKET))
                packets += [bytes(p) for p in cc.encode(frame)]
            self._silence = packets[-1]
        return self._silence

    def close(self) -> None:
        try:
            self._mux(self.stream.encode(None))
            self.container.close()
            os.fsync(self.file.fileno())
        finally:
            self.file.close()


def _read_exact(stream, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def serve(inp, out) -> None:
    recs: dict[int, _Rec | str] = {}  # a str: the error that stopped the recording

    def answer(rec_id: int, path: str, error: str) -> None:
        sha, size = None, 0
        if os.path.exists(path):
            size = os.path.getsize(path)
            if not error:
                sha = file_sha256(path)
        try:
            out.write(json.dumps({"rec": rec_id, "path": path, "sha256": sha, "bytes": size,
                                  "error": error}) + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):  # the box is gone: finish the files all the same
            pass

    def stop(rec_id: int, rec: _Rec, exc: Exception) -> None:
        try:
            rec.file.close()
        except OSError:
            pass
        recs[rec_id] = f"{rec.path}\0writing stopped: {exc}"

    def close(rec_id: int) -> None:
        rec = recs.pop(rec_id, None)
        if rec is None:  # opened by a worker before this one (it died): its audio is lost
            answer(rec_id, "", "the recorder worker restarted during the call")
            return
        if isinstance(rec, str):
            path, error = rec.split("\0", 1)
            answer(rec_id, path, error)
            return
        try:
            rec.close()
        except Exception as exc:  # noqa: BLE001 - reported with the recording
            rec.error = rec.error or f"closing failed: {exc}"
        answer(rec_id, rec.path, rec.error)

    while True:
        head = _read_exact(inp, HEADER.size)
        if head is None:
            break  # the box is gone: finish every recording properly
        op, rec_id, n = HEADER.unpack(head)
        payload = _read_exact(inp, n) if n else b""
        if payload is None:
            break
        if op == b"O":
            spec = json.loads(payload)
            try:
                recs[rec_id] = _Rec(spec)
            except Exception as exc:  # noqa: BLE001 - disk full, no permission: say so at close
                recs[rec_id] = f"{spec['path']}\0cannot write the recording: {exc}"
        elif op == b"D":
            rec = recs.get(rec_id)
            if isinstance(rec, _Rec):
                try:
                    rec.write(payload)
                except Exception as exc:  # noqa: BLE001 - keep what is written, stop here
                    stop(rec_id, rec, exc)
        elif op == b"G":
            rec = recs.get(rec_id)
            if isinstance(rec, _Rec):
                try:
                    rec.gap(GAP.unpack(payload)[0])
                except Exception as exc:  # noqa: BLE001 - keep what is written, stop here
                    stop(rec_id, rec, exc)
        elif op == b"C":
            close(rec_id)
        elif op == b"Q":
            break
    for rec_id in list(recs):
        close(rec_id)


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """A bigger pipe keeps more audio in the kernel, where it outlives a killed box."""
    try:
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except OSError:
        pass  # not a pipe, or over the system's limit: the default will do


if __name__ == "__main__":
    _grow_pipe(sys.stdin.fileno())
    serve(sys.stdin.buffer, sys.stdout)
