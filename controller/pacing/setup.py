"""One pacer configuration for a live campaign: lines give the ring time-out, the law the rest.

The ring time-out comes from the hardware profiles of the lines (GSM 40 s, E1 ``ring_timeout_s``),
raised to the compliance profile's minimum ring (FCC/TSR 15 s under ``us-regf``); the abandon
cap, its window and the bridge deadline come from the compliance profile; the campaign may aim
lower than the cap. A profile without abandon rules (``none``) keeps the FCC's 3 % over 30 days.
"""
from __future__ import annotations

from typing import Iterable

import structlog

from controller.compliance.profiles import Profile
from controller.pacing.estimators import COMPLIANCE
from controller.pacing.interface import PacerConfig

log = structlog.get_logger(__name__)

FCC_TARGET = 0.03
FCC_WINDOW_S = 30 * 86400.0
DEFAULT_RING_S = 40.0


def law_cap(profile: Profile) -> float:
    """The most the law lets a campaign abandon (FCC's 3 % when the profile says nothing)."""
    return profile.abandon_target if profile.abandon_target is not None else FCC_TARGET


def campaign_config(profile: Profile, ring_timeouts: Iterable[float], *,
                    abandon_target: float | None = None, reserve_inbound: int = 0,
                    campaign: str = "") -> PacerConfig:
    """The pacer's settings for a campaign under ``profile`` on lines with these time-outs."""
    cap = law_cap(profile)
    window = (profile.abandon_window.total_seconds() if profile.abandon_window is not None
              else FCC_WINDOW_S)
    min_ring = profile.min_ring_seconds or 0.0
    rings = [float(t) for t in ring_timeouts if t]
    ring = max(max(rings, default=DEFAULT_RING_S), min_ring)
    target = cap
    if abandon_target is not None:
        if 0.0 < abandon_target <= cap:
            target = float(abandon_target)
        else:
            log.warning("abandon_target_over_the_law", campaign=campaign, asked=abandon_target,
                        cap=cap, profile=profile.name)
    law = profile.name if profile.name in COMPLIANCE else "us-regf"  # a label here
    return PacerConfig(mode="predictive", compliance=law, abandon_target=target,
                       grace_s=profile.abandon_after_seconds or 2.0, no_answer_timeout_s=ring,
                       reserve_inbound=reserve_inbound, abandon_window_s=window,
                       abandon_cap=cap, min_ring_s=min_ring)
