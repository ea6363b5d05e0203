"""Why automatic dialing is held: one set of reasons, by who set them, shared by every dialer.

The recordings disk filling up, the clock not synchronised, ...: each part of the box sets its
own reason and clears it when it is over. Any reason holds every campaign (calls up and
inbound calls go on, no new call is placed); the reasons are shown together.
"""
from __future__ import annotations


class DialingHolds:
    def __init__(self) -> None:
        self._by: dict[str, str] = {}

    def set(self, who: str, reason: str | None) -> None:
        """``who`` holds dialing for ``reason``; None (or "") lifts ``who``'s hold."""
        if reason:
            self._by[who] = reason
        else:
            self._by.pop(who, None)

    def clear(self, who: str) -> None:
        self._by.pop(who, None)

    def update(self, reasons: dict[str, str]) -> None:
        for who, reason in reasons.items():
            self.set(who, reason)

    @property
    def reason(self) -> str | None:
        """Every reason, in the order they were set (None: dialing is not held)."""
        return "; ".join(self._by.values()) or None

    def as_dict(self) -> dict[str, str]:
        """Who holds dialing -> why (a Msg stays one, for a page in its own language)."""
        return dict(self._by)

    def __bool__(self) -> bool:
        return bool(self._by)

    def __contains__(self, who: object) -> bool:
        return who in self._by

    def __repr__(self) -> str:
        return f"DialingHolds({self._by!r})"
