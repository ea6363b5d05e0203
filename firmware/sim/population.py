"""Simulated debtors: who answers, who is busy, who is unreachable, and for how long they talk.

One model serves every simulator (GSM modems, the E1 network side), so the same campaign behaves
the same on either kind of line. Each call draws a :class:`Fate`; simulators record the fates they
played so tests can compare what the box recorded with what the debtors did.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from firmware.durations import lognormal

FATES = ("answer", "busy", "no_answer", "unreachable", "rejected", "invalid")


@dataclass(frozen=True, slots=True)
class Fate:
    """What one call meets: ``kind`` from FATES, ring and talk durations in seconds."""

    kind: str
    ring_s: float
    talk_s: float


@dataclass(frozen=True, slots=True)
class Conversation:
    """What an answered call brings: the debtor himself or not, a promise, and its fate."""

    rpc: bool
    promise_share: float  # of the debt promised, 0 when no promise
    keeps: bool


@dataclass
class Population:
    """Rates and durations of a debtor population; the rest of answer/busy/... is no answer."""

    answer_prob: float = 0.35
    busy_prob: float = 0.10
    unreachable_prob: float = 0.08
    rejected_prob: float = 0.04
    invalid_prob: float = 0.01
    ring_mean_s: float = 8.0
    ring_sd_s: float = 4.0
    no_answer_timeout_s: float = 30.0
    talk_mean_s: float = 60.0
    talk_sd_s: float = 30.0
    rpc_prob: float = 0.7  # of answered calls, the debtor himself
    ptp_prob: float = 0.35  # of right-party contacts, a promise to pay
    keep_prob: float = 0.6  # of promises, kept
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        total = (self.answer_prob + self.busy_prob + self.unreachable_prob + self.rejected_prob
                 + self.invalid_prob)
        if total > 1.0 + 1e-9 or min(self.answer_prob, self.busy_prob, self.unreachable_prob,
                                     self.rejected_prob, self.invalid_prob) < 0:
            raise ValueError(f"population rates must be >= 0 and sum to <= 1, got {total:.3f}")
        self._rng = random.Random(self.seed)

    @classmethod
    def from_dict(cls, data: dict) -> "Population":
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown population keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def conversation(self) -> Conversation:
        """Draw what an answered call brings (played by the simulated operator's debtor)."""
        rpc = self._rng.random() < self.rpc_prob
        ptp = rpc and self._rng.random() < self.ptp_prob
        share = round(self._rng.uniform(0.1, 1.0), 2) if ptp else 0.0
        return Conversation(rpc, share, ptp and self._rng.random() < self.keep_prob)

    def fate(self) -> Fate:
        """Draw the fate of one call."""
        r = self._rng.random()
        ring = min(lognormal(self._rng, self.ring_mean_s, self.ring_sd_s),
                   self.no_answer_timeout_s * 0.95)
        edges = (("answer", self.answer_prob), ("busy", self.busy_prob),
                 ("unreachable", self.unreachable_prob), ("rejected", self.rejected_prob),
                 ("invalid", self.invalid_prob))
        acc = 0.0
        for kind, p in edges:
            acc += p
            if r < acc:
                if kind == "answer":
                    return Fate(kind, ring, max(1.0, lognormal(self._rng, self.talk_mean_s,
                                                               self.talk_sd_s)))
                if kind == "rejected":
                    return Fate(kind, ring * 0.5, 0.0)
                return Fate(kind, 0.0, 0.0)
        return Fate("no_answer", self.no_answer_timeout_s, 0.0)
