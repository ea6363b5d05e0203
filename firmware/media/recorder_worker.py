"""The recorder's writer process: encodes every recording of the box and writes it to disk.

``python -m firmware.media.recorder_worker`` reads records from stdin and answers on stdout.
A record is a 9-byte header, ``op`` (1 byte), ``rec`` (uint32 LE: the recording's number) and
``n`` (uint32 LE: payload length), then the payload:

- ``O`` open: the payload is JSON {path, title, bitrate, complexity, page_s, fsync_s}
- ``D`` data: stereo s16le at 8 kHz (left: the debtor; right: what the debtor heard)
- ``C`` close: the encoder is flushed, the file closed, fsynced and checksummed; the answer is one
  JSON line {rec, path, sha256, bytes, error}
- ``Q`` quit

It runs in its own process so that libopus and disk writes never hold the event loop (or its GIL).
When the box dies (EOF on stdin) every open recording is closed properly, so even ``kill -9`` of
the box loses nothing; when both die, the Ogg pages already written (every ``page_s``, straight to
the file, fsynced every ``fsync_s``) still play.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import time

HEADER = struct.Struct("<cII")
RATE = 8000
# Two uncoupled mono Opus streams in one file (RFC 7845 channel mapping family 255: libopus's
# surround encoder then gives each channel a stream of its own), so the debtor's channel is
# encoded from the debtor's audio alone and the operator's from the operator's. A coupled stereo
# stream (family 0) narrows the stereo image at voice bitrates: each side bled into the other and
# steady voices smeared by up to 150 ms. CELT only ("lowdelay"): SILK drops steady tones in
# stretches and costs twice the CPU. ffmpeg and Chromium decode the file as two channels.
OPUS_OPTIONS = {"application": "lowdelay", "frame_duration": "60", "mapping_family": "255"}


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
        self.fsync_s = float(spec.get("fsync_s", 5.0))
        self.error = ""
        self.pts = 0
        self.synced = time.monotonic()  # a pace for fsync in this process, not a timestamp
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

    def write(self, data: bytes) -> None:
        import av
        n = len(data) // 4
        frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
        frame.sample_rate = RATE
        frame.planes[0].update(data)
        frame.pts = self.pts
        self.pts += n
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        if self.fsync_s and time.monotonic() - self.synced >= self.fsync_s:
            os.fsync(self.file.fileno())
            self.synced = time.monotonic()

    def close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
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
                    path = rec.path
                    try:
                        rec.file.close()
                    except OSError:
                        pass
                    recs[rec_id] = f"{path}\0writing stopped: {exc}"
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
