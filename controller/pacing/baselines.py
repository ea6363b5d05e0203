"""Known pacing algorithms, from their public descriptions, to compare ours against."""
from __future__ import annotations

import math

from controller.pacing.interface import Decision, FloorSnapshot, PacerBase, PacerConfig


class ProgressivePacer(PacerBase):
    """Progressive 1:1: one call per free operator."""

    name = "progressive"

    def decide(self, floor: FloorSnapshot, now_s: float) -> Decision:
        """One call per free operator not covered by a ringing or waiting call."""
        return Decision(self.progressive_count(floor), "progressive", "one call per free operator")


class FixedRatioPacer(PacerBase):
    """Fixed dial ratio: keep ``ratio`` calls up per free operator."""

    name = "fixed-ratio"

    def __init__(self, config: PacerConfig | None = None, ratio: float = 2.0) -> None:
        super().__init__(config)
        if ratio < 1.0:
            raise ValueError(f"dial ratio must be >= 1, got {ratio}")
        self.ratio = ratio

    def decide(self, floor: FloorSnapshot, now_s: float) -> Decision:
        """``ratio`` x free operators minus calls already ringing or waiting."""
        n = math.floor(self.ratio * floor.free) - floor.ringing - floor.waiting
        n = max(0, min(n, floor.lines_free))
        return Decision(n, "predictive", f"fixed ratio {self.ratio:g} per free operator")


class VicidialAdaptivePacer(PacerBase):
    """VICIdial ADAPT_HARD_LIMIT, as its manual describes the adaptive predictive method.

    Lines to dial = round(level x active agents) - calls up (ringing, waiting, with agents).
    Every second a sample of ready agents and waiting calls is kept; every 15 s
    level *= 1 + m (1 + i) with m = (avg ready - avg waiting) / avg agents over the last 15
    samples and i the intensity, clamped to [1, max_level]. Once more than 50 calls were placed
    today and today's drop rate exceeds the target, the level is set to 1.0 (HARD_LIMIT).
    """

    name = "vicidial-adaptive"
    PERIOD_S = 15.0

    def __init__(self, config: PacerConfig | None = None, max_level: float = 3.0,
                 intensity: float = 0.0) -> None:
        super().__init__(config)
        self.level = 1.0
        self.max_level = max_level
        self.intensity = intensity
        self._samples: list = []  # (agents, ready, waiting) once a second
        self._next_sample = 0.0
        self._next_adjust = self.PERIOD_S
        self._day = 0
        self.calls_today = 0
        self.answers_today = 0
        self.drops_today = 0

    def decide(self, floor: FloorSnapshot, now_s: float) -> Decision:
        """round(level x active agents) minus calls already up."""
        self._roll_day(now_s)
        while now_s >= self._next_sample:
            self._samples.append((floor.operators, floor.free, floor.waiting))
            del self._samples[:-15]
            self._next_sample += 1.0
        while now_s >= self._next_adjust:
            self._adjust()
            self._next_adjust += self.PERIOD_S
        up = floor.ringing + floor.waiting + len(floor.talk_elapsed)
        n = round(self.level * floor.operators) - up
        n = max(0, min(n, floor.lines_free))
        return Decision(n, "predictive", f"vicidial adaptive level {self.level:.2f}")

    def hard_limited(self) -> bool:
        """True when today's drop rate is over the target after more than 50 calls."""
        drop = self.drops_today / self.answers_today if self.answers_today else 0.0
        return self.calls_today > 50 and drop > self.config.abandon_target

    def _adjust(self) -> None:
        if self._samples:
            k = len(self._samples)
            agents = sum(s[0] for s in self._samples) / k
            ready = sum(s[1] for s in self._samples) / k
            waiting = sum(s[2] for s in self._samples) / k
            if agents > 0:
                m = (ready - waiting) / agents
                self.level *= 1.0 + m * (1.0 + self.intensity)
        self.level = min(self.max_level, max(1.0, self.level))
        if self.hard_limited():
            self.level = 1.0

    def _roll_day(self, now_s: float) -> None:
        day = int(now_s // 86400.0)
        if day != self._day:
            self._day = day
            self.calls_today = self.answers_today = self.drops_today = 0

    def observe_launched(self, now_s: float, n: int, segment: str = "default") -> None:
        """Count calls placed today."""
        self._roll_day(now_s)
        self.calls_today += n

    def observe_answered(self, after_s: float, now_s: float, segment: str = "default") -> None:
        """Count today's live answers."""
        super().observe_answered(after_s, now_s, segment)
        self._roll_day(now_s)
        self.answers_today += 1

    def observe_abandon(self, now_s: float, segment: str = "default") -> None:
        """Count today's drops."""
        super().observe_abandon(now_s, segment)
        self._roll_day(now_s)
        self.drops_today += 1


class IssabelPacer(PacerBase):
    """Issabel call center predictor (Predictor.class.php, as published).

    A busy agent counts as about to be free when an exponential talk time with the measured
    mean has ended by (time already in call + mean answer time) with probability >= 0.97.
    Calls to place = free agents + agents about to be free - clients waiting - calls ringing;
    with ``overcommit`` (Issabel's dialer option) the agents are divided by the measured
    answer rate (ASR) first.
    """

    name = "issabel"
    END_PROBABILITY = 0.97

    def __init__(self, config: PacerConfig | None = None, overcommit: bool = True) -> None:
        super().__init__(config)
        self.overcommit = overcommit

    def decide(self, floor: FloorSnapshot, now_s: float) -> Decision:
        """Calls for agents free now or about to be."""
        est = self.estimates(floor.segment)
        tta = est.time_to_answer.mean
        mean_talk = max(est.talk.mean, 1e-6)
        about_to_end = sum(1 for t in floor.talk_elapsed
                           if 1.0 - math.exp(-(t + tta) / mean_talk) >= self.END_PROBABILITY)
        agents = max(0, floor.free + about_to_end - floor.waiting)
        if self.overcommit:
            agents = math.ceil(agents / max(est.answer.value, 0.01))
        n = max(0, min(agents - floor.ringing, floor.lines_free))
        return Decision(n, "predictive", f"issabel: {agents} calls wanted "
                                         f"(answer rate {est.answer.value:.3f})")
