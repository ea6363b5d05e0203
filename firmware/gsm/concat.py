"""Join concatenated inbound SMS parts (3GPP TS 23.040 §9.2.3.24.1) into whole messages."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from firmware.gsm.pdu import Deliver, payload_text

GAP = "[…]"  # stands for parts that never arrived


@dataclass(slots=True)
class _Pending:
    first_seen: float
    parts: dict[int, Deliver] = field(default_factory=dict)


class Reassembler:
    """Collects parts keyed by (sender, reference, parts) in any order; time is the caller's ``now``."""

    def __init__(self, *, timeout: float = 600.0) -> None:
        self.timeout = timeout
        self._pending: dict[tuple[str, int, int], _Pending] = {}

    def add(self, sms: Deliver, now: float) -> Deliver | None:
        """Take one part; return the whole message once all parts are in (a single SMS at once)."""
        if sms.concat is None or sms.concat.parts == 1:
            return dataclasses.replace(sms, concat=None)
        key = (sms.sender, sms.concat.reference, sms.concat.parts)
        pending = self._pending.setdefault(key, _Pending(first_seen=now))
        pending.parts.setdefault(sms.concat.part, sms)  # a repeated part (modem re-delivery) is ignored
        if len(pending.parts) < sms.concat.parts:
            return None
        del self._pending[key]
        return _join(pending.parts, sms.concat.parts)

    def expire(self, now: float) -> list[Deliver]:
        """Give up on messages whose first part came ``timeout`` ago; return what arrived, gaps marked."""
        return [whole for _, whole in self.expired(now)]

    def expired(self, now: float) -> list[tuple[tuple[str, int, int], Deliver]]:
        """As :meth:`expire`, each with its key (sender, reference, parts)."""
        done = [key for key, p in self._pending.items() if now - p.first_seen >= self.timeout]
        return [(key, _join(self._pending.pop(key).parts, key[2])) for key in done]

    @property
    def waiting(self) -> int:
        """Messages still missing parts."""
        return len(self._pending)


def _join(parts: dict[int, Deliver], count: int) -> Deliver:
    """Join parts in order; runs of one alphabet are joined before decoding so split pairs survive."""
    texts: list[str] = []
    run: list[Deliver] = []

    def flush() -> None:
        if run:
            texts.append(payload_text(run[0].alphabet, b"".join(p.payload for p in run)))
            run.clear()

    for number in range(1, count + 1):
        part = parts.get(number)
        if part is None:
            flush()
            texts.append(GAP)
        else:
            if run and run[0].alphabet != part.alphabet:
                flush()
            run.append(part)
    flush()
    first = parts[min(parts)]
    return dataclasses.replace(first, text="".join(texts), concat=None,
                               payload=b"".join(parts[n].payload for n in sorted(parts)))
