"""Online estimates a pacer learns per campaign/segment, and the abandon-rate window."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from cext.pacing import lognormal_params

# Compliance window and abandon cap per profile (seconds, share of live answers).
COMPLIANCE = {
    "us-regf": (30 * 86400.0, 0.03),
    "ofcom": (86400.0, 0.03),
    "ru-230fz": (86400.0, 0.01),
    # Simulation only: any target, to compare pacers at the same abandon rate.
    "lab": (86400.0, 1.0),
}


class LogNormalEstimate:
    """Log-normal fitted online to durations, forgetting old ones (half-life in observations)."""

    def __init__(self, mean: float, sd: float, weight: float = 20.0,
                 half_life: float = 1000.0) -> None:
        mu, sigma = lognormal_params(mean, sd)
        self._decay = 0.5 ** (1.0 / half_life)
        self.weight = weight
        self._s1 = mu * weight
        self._s2 = (sigma * sigma + mu * mu) * weight
        self._cache: tuple | None = None

    def observe(self, seconds: float) -> None:
        """Fold in one observed duration."""
        x = math.log(max(seconds, 0.05))
        d = self._decay
        self.weight = self.weight * d + 1.0
        self._s1 = self._s1 * d + x
        self._s2 = self._s2 * d + x * x
        self._cache = None

    @property
    def params(self) -> tuple:
        """(mu, sigma) of the fitted log-normal."""
        if self._cache is None:
            mu = self._s1 / self.weight
            var = max(self._s2 / self.weight - mu * mu, 1e-4)
            self._cache = (mu, math.sqrt(var))
        return self._cache

    @property
    def mean(self) -> float:
        """Mean of the fitted log-normal."""
        mu, sigma = self.params
        return math.exp(mu + 0.5 * sigma * sigma)


class ShareEstimate:
    """A proportion (answer rate, early-failure share) with a Beta prior and forgetting."""

    def __init__(self, prior: float, weight: float = 20.0, half_life: float = 1000.0) -> None:
        self._decay = 0.5 ** (1.0 / half_life)
        self.hits = prior * weight
        self.total = weight

    def observe(self, hit: bool) -> None:
        """Fold in one outcome."""
        d = self._decay
        self.hits = self.hits * d + (1.0 if hit else 0.0)
        self.total = self.total * d + 1.0

    @property
    def value(self) -> float:
        """Current estimate."""
        return self.hits / self.total

    @property
    def sd(self) -> float:
        """Standard error of the estimate (its own uncertainty)."""
        p = self.value
        return math.sqrt(max(p * (1.0 - p), 1e-6) / (self.total + 1.0))


@dataclass
class Priors:
    """Cold-start beliefs, chosen on the cautious side (more answers, longer talks)."""

    answer_prob: float = 0.30
    time_to_answer_s: tuple = (10.0, 5.0)
    talk_s: tuple = (150.0, 120.0)
    wrap_s: tuple = (20.0, 10.0)
    early_failure_share: float = 0.4
    early_failure_s: tuple = (5.0, 3.0)


class SegmentEstimates:
    """What a pacer knows about one campaign segment: answer chance and the four durations."""

    def __init__(self, priors: Priors, no_answer_timeout_s: float,
                 half_life: float = 1000.0) -> None:
        self.no_answer_timeout_s = no_answer_timeout_s
        self.answer = ShareEstimate(priors.answer_prob, half_life=half_life)
        self.time_to_answer = LogNormalEstimate(*priors.time_to_answer_s, half_life=half_life)
        self.talk = LogNormalEstimate(*priors.talk_s, half_life=half_life)
        self.wrap = LogNormalEstimate(*priors.wrap_s, half_life=half_life)
        # Unanswered calls either fail early (busy, unreachable) or ring out at the timeout.
        self.early_failure = ShareEstimate(priors.early_failure_share, half_life=half_life)
        self.early_failure_time = LogNormalEstimate(*priors.early_failure_s,
                                                    half_life=half_life)
        self.seen = 0  # calls resolved (answered or not) actually observed, not the priors
        self.seen_answered = 0

    def answer_upper(self, z: float = 2.0, pending: int = 0) -> float:
        """Upper Wilson bound of the answer rate from what was observed (1 with nothing).

        ``pending``: calls launched and not resolved yet, counted as answers. Failures come
        back first (a switch says "busy" in a tenth of a second, a debtor answers after
        seconds), so the outcomes seen early are not a fair sample: until the calls in flight
        resolve, any of them may still be answered.
        """
        n = self.seen + pending
        if n == 0:
            return 1.0
        p = (self.seen_answered + pending) / n
        centre = p + z * z / (2 * n)
        spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return min(1.0, (centre + spread) / (1 + z * z / n))

    def observe_answered(self, after_s: float) -> None:
        """A call was answered live ``after_s`` seconds after launch."""
        self.answer.observe(True)
        self.time_to_answer.observe(after_s)
        self.seen += 1
        self.seen_answered += 1

    def observe_not_answered(self, after_s: float) -> None:
        """A call ended unanswered (busy, unreachable, no answer) after ``after_s`` seconds."""
        self.answer.observe(False)
        self.seen += 1
        early = after_s < self.no_answer_timeout_s - 0.5
        self.early_failure.observe(early)
        if early:
            self.early_failure_time.observe(after_s)


class AbandonWindow:
    """Live answers and abandons over the compliance window, in one-minute buckets."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._buckets: deque = deque()  # [minute, live, abandoned]
        self._peaks: deque = deque()  # [minute, abandoned]: decreasing, for the busiest minute
        self.live = 0
        self.abandoned = 0

    def record(self, now_s: float, live: int = 0, abandoned: int = 0) -> None:
        """Count a live answer and/or an abandon at ``now_s``."""
        minute = int(now_s // 60.0)
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += live
            self._buckets[-1][2] += abandoned
        else:
            self._buckets.append([minute, live, abandoned])
        self.live += live
        self.abandoned += abandoned
        if abandoned:
            count = self._buckets[-1][2]
            peaks = self._peaks
            while peaks and peaks[-1][1] <= count:
                peaks.pop()
            peaks.append([self._buckets[-1][0], count])

    def counts(self, now_s: float) -> tuple:
        """(live answers, abandons) inside the window ending at ``now_s``."""
        oldest = int((now_s - self.window_s) // 60.0)
        while self._buckets and self._buckets[0][0] <= oldest:
            _, live, abandoned = self._buckets.popleft()
            self.live -= live
            self.abandoned -= abandoned
        while self._peaks and self._peaks[0][0] <= oldest:
            self._peaks.popleft()
        return self.live, self.abandoned

    def busiest_minute(self, now_s: float) -> int:
        """The most abandons in one minute inside the window ending at ``now_s``."""
        self.counts(now_s)
        return self._peaks[0][1] if self._peaks else 0

    def rate(self, now_s: float) -> float:
        """Measured abandon rate over the window (0 with no live answer yet)."""
        live, abandoned = self.counts(now_s)
        return abandoned / live if live else 0.0
