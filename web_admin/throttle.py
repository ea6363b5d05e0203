"""Login throttling: exponential back-off per account and per address after repeated failures.

A few wrong passwords are free (typos happen). After that each further failure doubles the time
during which that account, and that address, may not try again: even the right password is
refused until it passes, so guessing costs time whatever the attacker does.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

FREE_FAILURES = 3  # wrong passwords before back-off starts
BASE_S = 2.0  # back-off after the first failure past the free ones
MAX_S = 15 * 60.0  # the longest lock
FORGET_S = 24 * 3600.0  # a key with no failure for this long starts afresh
MAX_KEYS = 20_000  # memory bound: the oldest keys go first


@dataclass(slots=True)
class _Entry:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Counts failed sign-ins per account and per address; says how long each must wait."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._keys: dict[tuple[str, str], _Entry] = {}

    def wait_s(self, username: str, address: str | None) -> float:
        """Seconds before this account or this address may try again (0: now)."""
        now = self._now()
        return max((e.locked_until - now for e in self._entries(username, address)), default=0.0
                   ) if self._keys else 0.0

    def failed(self, username: str, address: str | None) -> float:
        """Count one failure; the back-off it brings (seconds)."""
        now = self._now()
        longest = 0.0
        for key in self._key_names(username, address):
            e = self._keys.get(key)
            if e is None or now - e.last > FORGET_S:
                e = self._keys[key] = _Entry()
            e.failures += 1
            e.last = now
            if e.failures > FREE_FAILURES:
                lock = min(MAX_S, BASE_S * 2 ** (e.failures - FREE_FAILURES - 1))
                e.locked_until = now + lock
                longest = max(longest, lock)
        self._prune()
        return longest

    def succeeded(self, username: str, address: str | None) -> None:
        """A right password: the account's count starts afresh (the address keeps its own)."""
        self._keys.pop(("user", username.casefold()), None)

    def _key_names(self, username: str, address: str | None) -> list[tuple[str, str]]:
        keys = [("user", username.casefold())]
        if address:
            keys.append(("addr", address))
        return keys

    def _entries(self, username: str, address: str | None) -> list[_Entry]:
        return [e for k in self._key_names(username, address) if (e := self._keys.get(k))]

    def _prune(self) -> None:
        if len(self._keys) <= MAX_KEYS:
            return
        for key, _ in sorted(self._keys.items(), key=lambda kv: kv[1].last)[:len(self._keys) // 4]:
            del self._keys[key]
