"""The audio frame core (G.711, gain, level meter, per-tick frame switch), compiled when built,
else the pure-Python twin. API and rules: ``cext/media_py.py``."""
from __future__ import annotations

from cext import select

_impl = select("media")

FRAME_SAMPLES = _impl.FRAME_SAMPLES
FRAME_BYTES = _impl.FRAME_BYTES
SILENCE = _impl.SILENCE
DBFS_FLOOR = _impl.DBFS_FLOOR
MAX_GAIN = _impl.MAX_GAIN
MAX_SOURCES = _impl.MAX_SOURCES
FrameSwitch = _impl.FrameSwitch
JitterBuffer = _impl.JitterBuffer
JB_WINDOW = _impl.JB_WINDOW
alaw_encode = _impl.alaw_encode
alaw_decode = _impl.alaw_decode
ulaw_encode = _impl.ulaw_encode
ulaw_decode = _impl.ulaw_decode
apply_gain = _impl.apply_gain
level_dbfs = _impl.level_dbfs
gain_q12 = _impl.gain_q12
IMPLEMENTATION = "cython" if _impl.__name__ == "cext._media" else "python"

__all__ = ["DBFS_FLOOR", "FRAME_BYTES", "FRAME_SAMPLES", "FrameSwitch", "IMPLEMENTATION", "JB_WINDOW", "JitterBuffer",
           "MAX_GAIN", "MAX_SOURCES", "SILENCE", "alaw_decode", "alaw_encode", "apply_gain",
           "gain_q12", "level_dbfs", "ulaw_decode", "ulaw_encode"]
