"""A campaign's prompts: the abandon message and the recording notice, uploaded by the shop.

An upload (WAV, MP3, OGG...) is converted once to 8 kHz mono PCM and kept as a WAV file under the
data directory (``prompts/<campaign id>/<kind>.wav``); the campaign's settings name it. The abandon
message is what a debtor hears when no operator was free within 2 seconds of his answer (then the
box hangs up); the recording notice is played to the debtor when the operator is connected.
"""
from __future__ import annotations

import json
from pathlib import Path

from controller import audit
from firmware.errors import UserError
from firmware.media import prompts as media_prompts

KINDS = ("abandon", "notice")
MAX_S = {"abandon": 12.0, "notice": 15.0}  # the abandon message plays while the line releases


def _settings(store, campaign_id: int) -> dict:
    row = store.db.execute("SELECT settings FROM campaigns WHERE id=?", (campaign_id,)).fetchone()
    if row is None:
        raise UserError("no campaign with id {id}", id=campaign_id)
    return json.loads(row["settings"] or "{}")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UserError("prompt kind must be one of {kinds}, got {kind}",
                        kinds=", ".join(KINDS), kind=kind)


def path(store, data: Path, campaign_id: int, kind: str) -> Path | None:
    """The campaign's prompt file, or None when the shop has not uploaded one."""
    _check_kind(kind)
    rel = _settings(store, campaign_id).get(f"prompt_{kind}")
    if not rel:
        return None
    p = Path(data) / rel
    return p if p.exists() else None


def load(store, data: Path, campaign_id: int, kind: str) -> bytes | None:
    p = path(store, data, campaign_id, kind)
    return media_prompts.read_wav(p) if p is not None else None


def upload(store, data: Path, campaign_id: int, kind: str, content: bytes, *, filename: str,
           who: str, source: str = "") -> dict:
    """Convert and keep an uploaded prompt; audited. Returns {kind, seconds, path}."""
    _check_kind(kind)
    pcm = media_prompts.convert(content, name=filename, max_s=MAX_S[kind])
    rel = Path("prompts") / str(campaign_id) / f"{kind}.wav"
    media_prompts.write_wav(Path(data) / rel, pcm)
    with store.tx():
        settings = _settings(store, campaign_id)
        before = settings.get(f"prompt_{kind}")
        settings[f"prompt_{kind}"] = str(rel)
        store.db.execute("UPDATE campaigns SET settings=? WHERE id=?",
                         (json.dumps(settings, ensure_ascii=False), campaign_id))
        seconds = round(len(pcm) / 16000, 2)
        audit.record(store, who=who, action=f"prompt_{kind}_uploaded", obj="campaign",
                     key=str(campaign_id), before=before,
                     after={"file": filename, "seconds": seconds}, source=source)
    return {"kind": kind, "seconds": seconds, "path": str(rel)}


def remove(store, campaign_id: int, kind: str, *, who: str, source: str = "") -> None:
    _check_kind(kind)
    with store.tx():
        settings = _settings(store, campaign_id)
        before = settings.pop(f"prompt_{kind}", None)
        if before is None:
            return
        if kind == "abandon":
            _refuse_predictive_without_message(store, campaign_id, settings)
        store.db.execute("UPDATE campaigns SET settings=? WHERE id=?",
                         (json.dumps(settings, ensure_ascii=False), campaign_id))
        audit.record(store, who=who, action=f"prompt_{kind}_removed", obj="campaign",
                     key=str(campaign_id), before=before, after=None, source=source)


def _refuse_predictive_without_message(store, campaign_id: int, settings: dict) -> None:
    row = store.db.execute("SELECT mode, compliance_profile FROM campaigns WHERE id=?",
                           (campaign_id,)).fetchone()
    if row["compliance_profile"] == "us-regf" and row["mode"] == "predictive":
        raise UserError("this campaign dials predictive under us-regf, which needs an abandon "
                        "message: switch it to progressive first")


def require_abandon_message(store, data: Path, campaign_id: int, *, mode: str,
                            compliance_profile: str) -> None:
    """Reg F / TSR: a us-regf campaign may dial predictive only with an abandon message."""
    if compliance_profile == "us-regf" and mode == "predictive" and \
            path(store, data, campaign_id, "abandon") is None:
        raise UserError("a us-regf campaign refuses predictive mode until it has an abandon "
                        "message (the shop's name and a number to call back): upload one "
                        "(dialbox prompts upload --kind abandon), or dial progressive")
