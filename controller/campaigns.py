"""Campaigns as the shop manages them: create, start, pause, stop, archive, edit; every change audited.

The command line and the web admin both come through here; a running box reads the store every
couple of seconds (controller.campaign_runner), so a change made here reaches its dialers without
a restart.
"""
from __future__ import annotations

from pathlib import Path

from controller import audit
from controller.segments import Segment, check_target
from controller.store_campaigns import (DAY_NAMES, MODES, STATUSES, WRAP_AFTER, CampaignConfig,
                                        Schedule, _known_profile)
from firmware.errors import N_, InputError, UserError

__all__ = ("ACTIONS", "DAY_NAMES", "MODES", "STATUSES", "WRAP_AFTER", "CampaignConfig", "Schedule", "act",
           "create", "update", "law_cap", "check_segments", "set_segment_target")

# action -> (status it sets, statuses it may be taken from)
# How long a call offered to a person may ring on his desk (the campaign's take_s).
TAKE_MIN_S, TAKE_MAX_S = 5.0, 120.0

ACTIONS = {
    "start": ("running", ("draft", "paused", "stopped", "running")),
    "pause": ("paused", ("running", "paused")),
    "stop": ("stopped", ("draft", "running", "paused", "stopped")),
    "archive": ("archived", ("draft", "paused", "stopped", "archived")),
    "unarchive": ("stopped", ("archived",)),
}
_WHY_NOT = {
    "start": N_("campaign {name} is archived: it cannot be started; unarchive it first"),
    "pause": N_("campaign {name} is {status}: only a running campaign can be paused"),
    "stop": N_("campaign {name} is archived: it is stopped already"),
    "archive": N_("campaign {name} is {status}: stop the campaign before archiving it"),
    "unarchive": N_("campaign {name} is {status}: it is not archived"),
}


def create(store, name: str, *, who: str, source: str, creditor: str | None = None,
           mode: str = "progressive", compliance: str = "ru-230fz",
           demo: bool = False) -> CampaignConfig:
    """A new draft campaign (nothing dials until a person starts it)."""
    cid = store.create_campaign(name, creditor=creditor, mode=mode,
                                compliance_profile=compliance, demo=demo)
    cfg = store.campaign_config(cid)
    audit.record(store, who=who, action="create", obj="campaign", key=cfg.name,
                 after=cfg.to_json(), source=source)
    return cfg


def act(store, name: str, action: str, *, who: str, source: str,
        data: Path | None = None) -> CampaignConfig:
    """start | pause | stop | archive | unarchive; UserError when the status does not allow it.

    ``data``: the data directory, where a start checks the campaign's prompts (a us-regf
    predictive campaign dials only with an abandon message).
    """
    if action not in ACTIONS:
        raise UserError("unknown action {action}: one of {actions}", action=action,
                        actions=", ".join(ACTIONS))
    before = store.campaign_config(name)
    status, allowed_from = ACTIONS[action]
    if before.status not in allowed_from:
        raise UserError(_WHY_NOT[action], name=before.name, status=before.status)
    if action == "start" and data is not None:
        from controller import prompts
        prompts.require_abandon_message(store, data, before.id, mode=before.mode,
                                        compliance_profile=before.compliance)
    if status != before.status:
        store.update_campaign(before.id, status=status)
        audit.record(store, who=who, action=action, obj="campaign", key=before.name,
                     before={"status": before.status}, after={"status": status}, source=source)
    return store.campaign_config(before.id)


def update(store, name: str, *, who: str, source: str, **changes) -> CampaignConfig:
    """Change settings: creditor, mode, compliance, schedule (a Schedule or None), weight,
    wrap_limit_s (None: no limit), wrap_after, take_s (how long an offered call rings on a
    desk; None: 15 s), abandon_target (the pacing target, a share of live answers; None: the
    law's cap), line_group (patterns), operators, teams, name."""
    before = store.campaign_config(name)
    cols: dict = {}
    law = changes.get("compliance", before.compliance)
    if "compliance" in changes or "abandon_target" in changes:
        _known_profile(law)
        target = changes.get("abandon_target", before.abandon_target)
        check_target(target, "abandon_target", law_cap(law))
        if "abandon_target" in changes:
            cols["abandon_target"] = None if target is None else float(target)
        if "compliance" in changes:
            check_segments(store, before.id, store.segments(before.id), law)
    for key, value in changes.items():
        if key == "creditor":
            cols["creditor"] = (value or "").strip() or None
        elif key == "name":
            value = (value or "").strip()
            if not value or len(value) > 100:
                raise InputError("name: give the campaign a name of 1-100 characters")
            if value != before.name and store.db.execute(
                    "SELECT 1 FROM campaigns WHERE name=?", (value,)).fetchone():
                raise InputError("name: a campaign named {name} exists already", name=value)
            cols["name"] = value
        elif key == "mode":
            if value not in MODES:
                raise InputError("mode: {mode} is not a dialing mode; one of {modes}",
                                 mode=value, modes=", ".join(MODES))
            cols["mode"] = value
        elif key == "compliance":
            _known_profile(value)
            cols["compliance_profile"] = value
        elif key == "schedule":
            if value is not None and not isinstance(value, Schedule):
                raise InputError("schedule: give days, hours and a time zone")
            cols["schedule"] = None if value is None else _json(value.to_json())
        elif key == "weight":
            if not isinstance(value, int) or not 1 <= value <= 100:
                raise InputError("weight: a whole number from 1 to 100, not {value}",
                                 value=value)
            cols["weight"] = value
        elif key == "wrap_limit_s":
            if value is not None and not 5 <= float(value) <= 3600:
                raise InputError("wrap_limit_s: the wrap-up limit is 5 to 3600 seconds, or "
                                 "none; not {value}", value=value)
            cols["wrap_limit_s"] = None if value is None else float(value)
        elif key == "take_s":
            if value is not None and not _number_in(value, TAKE_MIN_S, TAKE_MAX_S):
                raise InputError("take_s: a call rings on an operator's desk 5 to 120 seconds "
                                 "before it goes to the next one, or none (15 s); not {value}",
                                 value=value)
            cols["take_s"] = None if value is None else float(value)
        elif key == "wrap_after":
            if value not in WRAP_AFTER:
                raise InputError("wrap_after: after the wrap-up limit the operator is made "
                                 "ready or paused, not {value}", value=value)
            cols["wrap_after"] = value
        elif key == "line_group":
            pats = [p.strip() for p in value if p.strip()]
            if any("," in p for p in pats):
                raise InputError("line_group: one line name or pattern per entry")
            cols["line_group"] = ",".join(pats) or None
        elif key in ("operators", "teams"):
            cols[key] = [n.strip() for n in value if n.strip()]
        elif key == "abandon_target":
            pass  # checked above, against the law the campaign will be under
        else:
            raise InputError("{key}: no such campaign setting", key=key)
    store.update_campaign(before.id, **cols)
    after = store.campaign_config(before.id)
    b, a = before.to_json(), after.to_json()
    diff = {k for k in a if a[k] != b[k]}
    if diff:
        audit.record(store, who=who, action="edit", obj="campaign", key=before.name,
                     before={k: b[k] for k in sorted(diff)},
                     after={k: a[k] for k in sorted(diff)}, source=source)
    return after


def law_cap(profile: str) -> float:
    """The most a campaign under this compliance profile may abandon (a share of live answers)."""
    from controller import compliance
    from controller.pacing.setup import law_cap as cap_of
    return cap_of(compliance.get_profile(profile))


def check_segments(store, campaign_id: int, segments, law: str | None = None) -> None:
    """Every segment's pacing target within the campaign's law (InputError naming the first)."""
    cap = law_cap(law or store.campaign_config(campaign_id).compliance)
    for seg in segments:
        seg = seg if isinstance(seg, Segment) else Segment.from_json(seg)
        try:
            check_target(seg.strategy.abandon_target, "", cap)
        except UserError:
            raise InputError("segment {name}: the pacing target is at most the law's {cap} %, "
                             "not {value} %", name=seg.name, cap=f"{cap * 100:g}",
                             value=f"{seg.strategy.abandon_target * 100:g}") from None


def set_segment_target(store, name: str, segment: str, target: float | None, *, who: str,
                       source: str) -> Segment:
    """One segment's pacing target (None: the campaign's), audited."""
    from dataclasses import replace
    cfg = store.campaign_config(name)
    segs = list(store.segments(cfg.id))
    names = [sg.name for sg in segs]
    if segment not in names:
        raise InputError("segment {segment}: campaign {name} has segments {names}",
                         segment=segment, name=cfg.name, names=", ".join(names))
    i = names.index(segment)
    before = segs[i].strategy.abandon_target
    segs[i] = replace(segs[i], strategy=replace(segs[i].strategy, abandon_target=target))
    check_segments(store, cfg.id, segs[i:i + 1], cfg.compliance)
    if before != target:
        with store.tx():
            store.set_strategy(cfg.id, segment, segs[i].strategy)
            audit.record(store, who=who, action="segment_target", obj="campaign", key=cfg.name,
                         before={"segment": segment, "abandon_target": before},
                         after={"segment": segment, "abandon_target": target}, source=source)
    return segs[i]


def _json(d: dict) -> str:
    import json
    return json.dumps(d, ensure_ascii=False, sort_keys=True)


def _number_in(value, low: float, high: float) -> bool:
    try:
        return low <= float(value) <= high
    except (TypeError, ValueError):
        return False
