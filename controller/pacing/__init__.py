"""Pacing: how many calls to launch now. Pacers, their baselines and the floor simulator.

Live use: one :class:`Pacer` per campaign (``PacerConfig``: mode, compliance profile, target,
no-answer timeout, inbound reserve). At each decision instant (any call or operator event, and
once a second) call ``decide(FloorSnapshot, now_s)`` and launch ``Decision.n_calls`` leads;
``Decision.reason`` and ``Decision.fallback`` say why. Feed every outcome back, with the
segment of the lead: ``observe_launched``, ``observe_answered(after_s, now_s)``,
``observe_not_answered(after_s)``, ``observe_talk_end(talk_s)``, ``observe_wrap_end(wrap_s)``,
``observe_abandon(now_s)``. ``now_s`` must be one monotonic clock for the life of the campaign:
the abandon window (30 days, 24 h, 1 day by profile) is measured on it.
"""
from __future__ import annotations

from controller.pacing.baselines import (FixedRatioPacer, IssabelPacer, ProgressivePacer,
                                         VicidialAdaptivePacer)
from controller.pacing.interface import Decision, FloorSnapshot, PacerBase, PacerConfig
from controller.pacing.pacer import Pacer

PACER_NAMES = ("progressive", "fixed-ratio", "vicidial-adaptive", "issabel", "predictive",
               "oracle")


def make_pacer(name: str, config: PacerConfig | None = None) -> PacerBase:
    """A fresh pacer by its name in :data:`PACER_NAMES`."""
    if name == "progressive":
        return ProgressivePacer(config)
    if name == "fixed-ratio":
        return FixedRatioPacer(config)
    if name == "vicidial-adaptive":
        return VicidialAdaptivePacer(config)
    if name == "issabel":
        return IssabelPacer(config)
    if name == "predictive":
        return Pacer(config)
    if name == "oracle":
        from controller.pacing.oracle import OraclePacer
        return OraclePacer(config)
    raise ValueError(f"unknown pacing {name!r}; known: {', '.join(PACER_NAMES)}")


def simulate(scenario, name: str, seed: int | None = None):
    """Run pacer ``name`` on ``scenario`` for its whole duration; returns a SimResult."""
    from controller.pacing.floor import FloorSimulation
    config = PacerConfig(compliance=scenario.compliance, abandon_target=scenario.abandon_target,
                         no_answer_timeout_s=scenario.no_answer_timeout_s)
    return FloorSimulation(scenario, make_pacer(name, config), seed=seed).run()


__all__ = ["Decision", "FloorSnapshot", "Pacer", "PacerBase", "PacerConfig", "PACER_NAMES",
           "make_pacer", "simulate"]
