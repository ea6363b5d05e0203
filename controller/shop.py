"""The shop's own time zone: the box's, set at boot from the config and on /settings."""
from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Europe/Moscow"  # a box whose config names no time zone


def shop_zone() -> str:
    """The IANA name of the shop's time zone (``TZ`` as boot and /settings set it), read at each
    call so that a change on /settings takes effect at once; Moscow when none is set."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return DEFAULT_ZONE
