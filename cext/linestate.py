"""The line-state core and timer wheel, compiled when built, else the pure-Python twin."""
from __future__ import annotations

from cext import select

_impl = select("linestate")

LineCore = _impl.LineCore
TimerWheel = _impl.TimerWheel
IMPLEMENTATION = "cython" if _impl.__name__ == "cext._linestate" else "python"

__all__ = ["IMPLEMENTATION", "LineCore", "TimerWheel"]
