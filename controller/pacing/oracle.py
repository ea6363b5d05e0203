"""A clairvoyant pacer for the simulator: it knows every call's fate and every talk's length.

It dials the leads in their order, and launches the next one when, with everything known about
the calls already up and the operators' hang-up times, every live answer still finds an operator
in time. It never skips a lead, so it is a practical upper bound, not a theoretical one.
"""
from __future__ import annotations

import bisect

from controller.pacing.floor import FATE_ANSWER
from controller.pacing.interface import Decision, FloorSnapshot, PacerBase


class OraclePacer(PacerBase):
    """Knows the future of the simulated floor (``floor.clairvoyant``)."""

    name = "oracle"

    def decide(self, floor: FloorSnapshot, now_s: float) -> Decision:
        """Launch leads in order while every known answer still meets an operator in time."""
        sim = floor.clairvoyant
        if sim is None:
            raise ValueError("the oracle pacer only runs inside the floor simulation")
        grace = sim.grace_s
        free_at = [now_s] * len(sim.free_ops)
        for op, start in sim.talking.items():
            _, _, talk, wrap, _, _ = sim.lead(sim.op_call[op])
            free_at.append(start + talk + wrap)
        for op, start in sim.wrapping.items():
            free_at.append(start + sim.lead(sim.op_call[op])[3])
        free_at.sort()
        deadlines = sorted([t + grace for t in sim.waiting.values()]
                           + [sim.ringing[k] + delay + grace
                              for k, (fate, delay) in sim.fates.items() if fate == FATE_ANSWER])
        n = 0
        while n < floor.lines_free:
            fate, delay = sim.fate(sim.next_lead + n, now_s)
            if fate == FATE_ANSWER:
                deadline = now_s + delay + grace
                i = bisect.bisect_right(deadlines, deadline)
                trial = deadlines[:i] + [deadline] + deadlines[i:]
                if not _feasible(free_at, trial):
                    break
                deadlines = trial
            n += 1
        return Decision(n, "predictive", "oracle: every known answer meets an operator")


def _feasible(free_at: list, deadlines: list) -> bool:
    """True if the i-th earliest deadline can take the i-th earliest free operator, for all i."""
    if len(deadlines) > len(free_at):
        return False
    for f, d in zip(free_at, deadlines):
        if f > d:
            return False
    return True
