"""What every pacer sees (the floor), says (a decision) and learns from (outcomes)."""
from __future__ import annotations

import abc

from dataclasses import dataclass, field

from controller.pacing.estimators import AbandonWindow, COMPLIANCE, Priors, SegmentEstimates

MODES = ("preview", "progressive", "predictive")


@dataclass(slots=True)
class FloorSnapshot:
    """The floor at a decision instant; elapsed times in seconds."""

    operators: int  # logged in (free + talking + wrap-up)
    free: int
    talk_elapsed: list = field(default_factory=list)  # one entry per operator talking
    wrap_elapsed: list = field(default_factory=list)  # one entry per operator in wrap-up
    ring_elapsed: list = field(default_factory=list)  # one entry per outbound call not resolved
    waiting: int = 0  # answered calls waiting for an operator (inside the 2 s grace)
    lines_free: int = 0
    previewing: int = 0  # operators looking at a card in preview mode
    segment: str = "default"
    clairvoyant: object = None  # simulation only: what the oracle may know

    @property
    def ringing(self) -> int:
        """Outbound calls launched and not yet resolved."""
        return len(self.ring_elapsed)


@dataclass(frozen=True, slots=True)
class Decision:
    """How many calls to launch now, in which mode, and why."""

    n_calls: int
    mode: str
    reason: str
    fallback: bool = False  # True when a predictive pacer chose progressive for safety
    expected_abandons: float = 0.0
    expected_live: float = 0.0


@dataclass
class PacerConfig:
    """Settings of a campaign's pacing; the compliance profile sets window and target."""

    mode: str = "predictive"
    compliance: str = "us-regf"
    abandon_target: float | None = None  # None: the compliance profile's cap
    grace_s: float = 2.0
    no_answer_timeout_s: float = 30.0
    reserve_inbound: int = 0  # blended: operators kept free for inbound calls
    min_operators: int | None = None  # None: derived from the target (small floors are volatile)
    priors: Priors = field(default_factory=Priors)
    half_life: float = 1000.0
    # From a compliance profile (see controller.pacing.setup); None: the table by name.
    abandon_window_s: float | None = None
    abandon_cap: float | None = None
    min_ring_s: float = 0.0  # an unanswered call rings at least this long (FCC/TSR: 15 s)
    # Cold start: until a segment has this many outcomes, calls in flight stay under what
    # the free operators could take even at the highest answer rate the data allows (calls
    # still in flight counted as answers). Failures come back in a tenth of a second and
    # answers after seconds, so the first hundred outcomes are mostly failures and the first
    # talks and wrap-ups to end are the short ones: 200 lets the estimates settle (the live
    # run with 152 lines and 60 operators abandoned a tenth of its first minute at 100).
    warmup_outcomes: int = 200

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"pacing mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.compliance not in COMPLIANCE:
            raise ValueError(f"unknown compliance profile {self.compliance!r}; "
                             f"known: {', '.join(COMPLIANCE)}")
        cap = self.abandon_cap if self.abandon_cap is not None else COMPLIANCE[self.compliance][1]
        if self.abandon_target is None:
            self.abandon_target = cap
        if not 0.0 < self.abandon_target <= cap:
            raise ValueError(f"abandon target must be in (0, {cap}] for {self.compliance}, "
                             f"got {self.abandon_target}")

    @property
    def window_s(self) -> float:
        """Length of the compliance window in seconds."""
        if self.abandon_window_s is not None:
            return self.abandon_window_s
        return COMPLIANCE[self.compliance][0]


class PacerBase(abc.ABC):
    """Outcome bookkeeping shared by all pacers: per-segment estimates and the abandon window."""

    name = "base"

    def __init__(self, config: PacerConfig | None = None) -> None:
        self.config = config or PacerConfig()
        self.window = AbandonWindow(self.config.window_s)
        self._segments: dict = {}

    def estimates(self, segment: str = "default") -> SegmentEstimates:
        """The learned estimates of ``segment`` (created from the priors on first use)."""
        est = self._segments.get(segment)
        if est is None:
            est = SegmentEstimates(self.config.priors, self.config.no_answer_timeout_s,
                                   self.config.half_life)
            self._segments[segment] = est
        return est

    @abc.abstractmethod
    def decide(self, floor: FloorSnapshot, now_s: float) -> Decision:
        """How many calls to launch at ``now_s``."""

    def observe_launched(self, now_s: float, n: int, segment: str = "default") -> None:
        """``n`` calls were launched."""

    def observe_answered(self, after_s: float, now_s: float, segment: str = "default") -> None:
        """A call was answered live ``after_s`` s after launch."""
        self.estimates(segment).observe_answered(after_s)
        self.window.record(now_s, live=1)

    def observe_not_answered(self, after_s: float, segment: str = "default") -> None:
        """A call ended unanswered after ``after_s`` s (busy, unreachable, no answer)."""
        self.estimates(segment).observe_not_answered(after_s)

    def observe_talk_end(self, talk_s: float, segment: str = "default") -> None:
        """A conversation ended after ``talk_s`` s; the operator is now in wrap-up."""
        self.estimates(segment).talk.observe(talk_s)

    def observe_wrap_end(self, wrap_s: float, segment: str = "default") -> None:
        """An operator finished wrap-up after ``wrap_s`` s and is free."""
        self.estimates(segment).wrap.observe(wrap_s)

    def observe_abandon(self, now_s: float, segment: str = "default") -> None:
        """A live answer found no operator within the grace period."""
        self.window.record(now_s, abandoned=1)

    def progressive_count(self, floor: FloorSnapshot, reserve: int = 0) -> int:
        """One call per free operator not already covered by a ringing or waiting call."""
        n = floor.free - reserve - floor.ringing - floor.waiting
        return max(0, min(n, floor.lines_free))
