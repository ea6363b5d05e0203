"""Pacing: how many calls to launch now. Pacers, their baselines and the floor simulator.

Live use: build a :class:`Pacer` per campaign, call ``decide(FloorSnapshot, now_s)`` at each
decision instant, and feed outcomes back through the ``observe_*`` methods.
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
