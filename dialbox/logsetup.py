"""structlog for the whole program: JSON off a terminal, readable on one; stdlib logs routed through it."""
from __future__ import annotations

import logging
import os
import sys

import structlog

TRACE = 5  # raw bytes on the wire: below DEBUG so DEBUG stays readable


def configure(level: str = "INFO", *, json: bool | None = None) -> None:
    """Configure once at program start."""
    if json is None:
        json = not sys.stderr.isatty()
    logging.addLevelName(TRACE, "TRACE")
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (structlog.processors.JSONRenderer(ensure_ascii=False) if json
                else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Cached loggers skip later configuration; tests capture logs, so they turn it off.
        cache_logger_on_first_use=not os.environ.get("DIALBOX_LOG_NO_CACHE"),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
