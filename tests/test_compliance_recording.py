"""Recording notice and retention come from the compliance profile (ru-230fz: notice on, kept
3 years); the box plays the notice and purges recordings by what the campaigns' profiles say."""
from __future__ import annotations

import pytest

from controller import prompts
from controller.compliance import get_profile
from controller.store import Lead, Store
from dialbox.appliance import Appliance, Settings
from tests.test_prompts import _wav


@pytest.mark.parametrize("name,notice,days", [
    ("ru-230fz", True, 3 * 365 + 1),
    ("ru-230fz:calendar", True, 3 * 365 + 1),
    ("us-regf", True, 3 * 365 + 1),
    ("none", False, None),
])
def test_profiles_say_whether_to_announce_and_how_long_to_keep(name, notice, days):
    p = get_profile(name)
    assert (p.recording_notice, p.recording_retention_days) == (notice, days)


@pytest.fixture
def box(tmp_path):
    app = Appliance(Settings(data=tmp_path, recording_retention_days=400.0))
    app.store = Store(tmp_path / "dialbox.sqlite3")
    yield app
    app.store.close()


def _call(box, campaign: str, profile: str, call_id: str) -> int:
    cid = box.store.campaign(campaign, create=True, compliance_profile=profile)
    box.store.upsert_account(cid, {"account_id": call_id}, [("+79161234567", "mobile")])
    pk, phone = box.store.db.execute("SELECT a.id, p.id FROM accounts a JOIN phones p ON "
                                     "p.account_pk=a.id WHERE a.campaign_id=?", (cid,)).fetchone()
    box.store.begin_attempt(cid, Lead(pk, phone, "+79161234567", call_id), "gsm0", call_id, None)
    prompts.upload(box.store, box.settings.data, cid, "notice", _wav(700, 1.0), filename="n.wav",
                   who="admin")
    return cid


@pytest.mark.parametrize("profile,plays", [("ru-230fz", True), ("us-regf", True),
                                           ("none", False)])
def test_the_notice_plays_when_the_profile_wants_it(box, profile, plays):
    _call(box, "c", profile, "call-1")
    pcm = box._prompt_for("call-1", "notice")
    assert (pcm is not None and len(pcm) > 8000) is plays


def test_retention_is_the_longest_the_campaigns_profiles_want(box):
    assert box._retention_days() == 400.0  # no campaign yet: the box's setting
    _call(box, "none", "none", "call-1")
    assert box._retention_days() == 400.0
    _call(box, "ru", "ru-230fz", "call-2")
    assert box._retention_days() == 3 * 365 + 1
