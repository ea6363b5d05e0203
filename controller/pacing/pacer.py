"""The dialbox pacer: preview, progressive, predictive and blended reserve on one model.

Predictive decisions come from ``cext.pacing.plan``: extra calls are added while the marginal
expected abandons per expected live answer stay under a threshold ``lam`` and the total stays
inside the abandon budget (with one standard deviation to spare). ``lam`` is steered by
feedback on the measured window rate: it grows while the window holds unspent budget and
shrinks after each abandon. The aim sits 1.5 standard errors of the measured rate under the
target, so a floor with few live answers aims lower; below ``min_operators`` the pacer falls
back to progressive and says so in its decision.

The budget is spent at a bounded pace, never in one go. Abandons come in clusters (a wave of
answers while every operator talks), which the plan's expectation does not see: the live run
spent none of its budget over 470 answers, then lost 6-12 calls within seconds and went over ru-230fz's 1 %.
So the plan may risk at most ``burst`` abandons beyond the target's share of the calls in
flight, whatever the window has saved, and ``lam`` only grows on the slack left after a
reserve: the busiest minute the window has seen, less the one call whose randomness no pacer
can rule out. While an answered call waits for an operator, no call that risks an abandon
goes out. The cumulative rate then approaches the target from below, and a cluster like the
worst one seen lifts it over the target by one call at most.
"""
from __future__ import annotations

import math

import structlog

from cext import pacing as core
from controller.pacing.interface import Decision, FloorSnapshot, PacerBase, PacerConfig

LAM_MIN = 0.002
LAM_MAX = 0.6
SURPLUS_CAP = 3.0  # standard deviations of unspent (or overspent) budget acted on
BURST = 1.0  # abandons beyond the target's share of the calls in flight risked at once

log = structlog.get_logger(__name__)


class Pacer(PacerBase):
    """dialbox's own pacer; ``config.mode`` picks preview, progressive or predictive."""

    name = "predictive"

    def __init__(self, config: PacerConfig | None = None, lam0: float | None = None,
                 lam0_share: float = 0.7,
                 gain: float = 1.0, uncertainty_z: float = 1.0,
                 aim_z: float = 1.5, burst: float = BURST) -> None:
        super().__init__(config)
        target = self.config.abandon_target
        self.lam0 = lam0 if lam0 is not None else lam0_share * target
        self.gain = gain
        self.uncertainty_z = uncertainty_z
        self.aim_z = aim_z
        self.burst = burst
        if self.config.min_operators is not None:
            self.min_operators = self.config.min_operators
        else:
            # Below this a single abandon is a large share of an hour's live answers.
            self.min_operators = max(3, math.ceil(0.1 / target))
        self._fallback = False

    def decide(self, floor: FloorSnapshot, now_s: float, target: float | None = None
               ) -> Decision:
        """How many calls to launch at ``now_s``; ``target``: the pacing target of the leads'
        segment (a share of live answers abandoned), None: the campaign's."""
        mode = self.config.mode
        reserve = self.config.reserve_inbound
        if mode == "preview":
            n = max(0, min(floor.free - reserve - floor.previewing - floor.ringing,
                           floor.lines_free))
            return Decision(n, "preview", "one card per free operator")
        if mode == "progressive":
            return Decision(self.progressive_count(floor, reserve), "progressive",
                            "one call per free operator")
        fallback = floor.operators - reserve < self.min_operators
        if fallback != self._fallback:
            self._fallback = fallback
            log.info("pacing fallback" if fallback else "pacing predictive again",
                     operators=floor.operators, reserve=reserve,
                     min_operators=self.min_operators)
        if fallback:
            return Decision(self.progressive_count(floor, reserve), "progressive",
                            f"progressive fallback: {floor.operators - reserve} operators "
                            f"available, predictive needs >= {self.min_operators} "
                            f"(small floors are volatile)", fallback=True)
        return self._predictive(floor, now_s, reserve, target)

    def feedback(self, now_s: float, target: float | None = None) -> tuple:
        """(lam, aim, budget, reserve): threshold, aimed rate, abandons the plan may risk now
        beyond the target's share of the calls in flight, and the abandons of slack kept back,
        for the campaign's target or a segment's own (the window is the campaign's, as the
        law's)."""
        target = self.config.abandon_target if target is None else target
        lam0 = self.lam0 * target / self.config.abandon_target
        live, abandoned = self.window.counts(now_s)
        # 1.5 standard errors of the measured rate below the target, never under half of it.
        se = math.sqrt(target * (1.0 - target) / live) if live else target
        aim = max(0.5 * target, target - self.aim_z * se)
        # A cluster as big as the busiest minute seen may come at any time: that much slack,
        # less one call, is never counted as unspent.
        reserve = max(0.0, self.window.busiest_minute(now_s) - 1.0)
        # Unspent budget in standard deviations of the abandon count: a small floor reacts more
        # to each abandon than a large one, whose count is less noisy.
        surplus = (aim * live - abandoned - reserve) / math.sqrt(aim * live + 1.0)
        surplus = min(SURPLUS_CAP, max(-SURPLUS_CAP, surplus))
        lam = min(LAM_MAX, max(LAM_MIN, lam0 * math.exp(self.gain * surplus)))
        # What the window saved is spent at a bounded pace, not all at once.
        budget = min(target * live - abandoned, self.burst)
        return lam, aim, budget, reserve

    def _predictive(self, floor: FloorSnapshot, now_s: float, reserve: int,
                    target: float | None) -> Decision:
        est = self.estimates(floor.segment)
        target = self.config.abandon_target if target is None else target
        lam, aim, budget, reserve_ab = self.feedback(now_s, target)
        if floor.waiting:
            # An answered call is waiting for an operator: the floor is short right now, and
            # the next answers would queue behind it. Only calls with no abandon risk go out
            # (what turns a wave of answers into a cluster of abandons).
            lam, budget = LAM_MIN, min(budget, 0.0)
        # Pessimistic about the answer rate by its own uncertainty: more answers, more risk.
        p = min(0.999, est.answer.value + self.uncertainty_z * est.answer.sd)
        tta_mu, tta_sigma = est.time_to_answer.params
        talk_mu, talk_sigma = est.talk.params
        wrap_mu, wrap_sigma = est.wrap.params
        fail_mu, fail_sigma = est.early_failure_time.params
        free = floor.free - reserve
        talk = floor.talk_elapsed
        if free < 0:
            # Reserved operators come from those who free up first: drop the longest talks.
            talk = sorted(talk)[:max(0, len(talk) + free)]
            free = 0
        max_new = min(floor.lines_free, 8 * max(1, floor.operators - reserve))
        n, exp_ab, exp_live = core.plan(
            free, talk, floor.wrap_elapsed, floor.ring_elapsed, floor.waiting,
            p, tta_mu, tta_sigma, est.early_failure.value, fail_mu, fail_sigma,
            self.config.no_answer_timeout_s, talk_mu, talk_sigma, wrap_mu, wrap_sigma,
            self.config.grace_s, lam, budget, target, max_new)
        reason = (f"predictive: target={target:.4f} lam={lam:.3f} aim={aim:.4f} "
                  f"budget={budget:.1f} reserve={reserve_ab:.0f} "
                  f"p_answer={p:.3f} expected abandons {exp_ab:.3f} of {exp_live:.2f} live")
        if est.seen < self.config.warmup_outcomes:
            # No burst at start or resume: the priors are guesses, so the floor's free
            # operators must cover every call in flight even at the answer rate's upper
            # bound (1 before the first outcome: progressive). The cap lifts as data come.
            upper = est.answer_upper(pending=floor.ringing)
            cap = max(0, math.floor(max(0, free) / upper) - floor.ringing - floor.waiting)
            if n > cap:
                n = cap
                reason += (f"; warming up: {est.seen} outcomes seen, answer rate at most "
                           f"{upper:.2f}, {cap} calls")
        return Decision(n, "predictive", reason, expected_abandons=exp_ab,
                        expected_live=exp_live)
