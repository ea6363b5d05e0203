"""The last log lines, kept in memory for the console's ``show log`` (no tracebacks)."""
from __future__ import annotations

import logging
from collections import deque
from datetime import datetime

import structlog


def _for_a_person(_logger, _name, event_dict: dict) -> dict:
    """No tracebacks; the time in the box's local zone, to the second."""
    event_dict.pop("exc_info", None)
    event_dict.pop("exception", None)
    ts = event_dict.get("timestamp")
    if isinstance(ts, str) and "T" in ts:
        try:
            when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            event_dict["timestamp"] = when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
    return event_dict


class LogRing(logging.Handler):
    """A logging handler that keeps the newest ``size`` lines, one line each."""

    def __init__(self, size: int = 1000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.lines: deque[str] = deque(maxlen=size)
        self.setFormatter(structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level,
                               structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S",
                                                                utc=False)],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        _for_a_person,
                        structlog.dev.ConsoleRenderer(colors=False)]))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record).replace("\n", " ").rstrip())
        except Exception:  # a log line that cannot be rendered is not worth a crash
            self.handleError(record)

    def tail(self, n: int) -> list[str]:
        return list(self.lines)[-n:] if n > 0 else []


def install(size: int) -> LogRing:
    ring = LogRing(size)
    logging.getLogger().addHandler(ring)
    return ring


def remove(ring: LogRing) -> None:
    logging.getLogger().removeHandler(ring)
