"""/metrics in Prometheus format from a running box; open to loopback and allowed networks,
a scrape token for anyone else."""
from __future__ import annotations

from unittest import mock

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from dialbox import config
from dialbox.appliance import Settings
from firmware.gsm.driver import GSM_MAX_PREFILL_FRAMES
from tests.gsmsim import until
from tests.runbox import free_port, running
from web_admin import metrics

TOKEN = "scrape-0123456789abcdef"


async def test_a_scrape_shows_the_box(tmp_path):
    data = tmp_path / "data"
    (data / "recordings").mkdir(parents=True)
    (data / "recordings" / "a.ogg").write_bytes(b"x" * 1234)
    cfg = config.ApplianceConfig(data=data, listen=[f"127.0.0.1:{free_port()}"], simulate=True,
                                 metrics_token=TOKEN, metrics_allow=["192.0.2.0/24"])
    settings = Settings(simulate=True, data=data, operators=2, compliance="none",
                        time_scale=20, seed=11, mode="predictive")
    async with running(cfg, settings) as (app, _):
        await until(lambda: app.store.db.execute(
            "SELECT COUNT(*) FROM attempts WHERE state='done'").fetchone()[0] >= 5, timeout=60)
        async with aiohttp.ClientSession() as http:
            async with http.get(app.runtime.web_urls[0] + "metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain; version=")
                text = await r.text()
    fams = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(name: str) -> dict:
        return {tuple(sorted(s.labels.items())): s.value for s in fams[name].samples
                if s.name in (name, name + "_total")}

    lines = samples("dialbox_lines")
    assert sum(lines.values()) == 34
    assert {dict(k)["kind"] for k in lines} == {"gsm", "e1"}
    calls = samples("dialbox_calls")
    assert fams["dialbox_calls"].type == "counter" and sum(calls.values()) >= 5
    assert set(dict(k)["outcome"] for k in calls) <= {"answered", "busy", "no_answer",
                                                       "rejected", "unreachable", "failed",
                                                       "invalid_number", "congestion",
                                                       "interrupted", "unknown"}
    rate = samples("dialbox_abandon_rate")
    assert list(rate) == [(("campaign", "Демо-кампания"),)] and 0 <= min(rate.values()) <= 1
    assert {dict(k)["queue"] for k in samples("dialbox_queue_depth")} == {"answered", "inbound"}
    lag = samples("dialbox_event_loop_lag_seconds")
    assert {dict(k)["quantile"] for k in lag} == {"0.5", "0.99", "1.0"}
    assert all(0 <= v < 5 for v in lag.values())
    assert {dict(k)["driver"] for k in samples("dialbox_driver_errors")} >= {"gsm0", "e1-0"}
    assert samples("dialbox_recordings_bytes") == {(): 1234.0}
    assert samples("dialbox_clock_synchronized")[()] in (0.0, 1.0)
    assert samples("dialbox_dialing_held")[(("reason", "clock"),)] == 0.0  # --simulate
    assert "dialbox_task_failures" in fams and "dialbox_boot_failures" in fams
    # every line leg's jitter buffer: GSM lines adaptive from one frame, E1 lines fixed at one
    depth = {dict(k)["line"]: v for k, v in samples("dialbox_media_line_buffer_frames").items()}
    assert depth and set(depth) == {leg.name for leg in app.media.legs.values()
                                    if leg.kind == "line"}
    assert all(1 <= v <= GSM_MAX_PREFILL_FRAMES for v in depth.values())
    assert set(dict(k)["line"] for k in samples("dialbox_media_line_jitter_seconds")) == set(depth)
    events = samples("dialbox_media_line_buffer_events")
    assert {dict(k)["event"] for k in events} == {"underrun", "grown", "shrunk", "dropped",
                                                   "drained"}


def _request(remote: str, auth: str | None = None):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda k, d=None: (remote, 40000) \
        if k == "peername" else d
    headers = {"Authorization": auth} if auth else {}
    return make_mocked_request("GET", "/metrics", headers=headers, transport=transport)


@pytest.mark.parametrize("remote,auth,token,allowed,status", [
    ("127.0.0.1", None, TOKEN, [], None),
    ("::1", None, None, [], None),
    ("192.0.2.17", None, TOKEN, ["192.0.2.0/24"], None),
    ("::ffff:192.0.2.17", None, TOKEN, ["192.0.2.0/24"], None),
    ("198.51.100.4", None, TOKEN, ["192.0.2.0/24"], 401),
    ("198.51.100.4", f"Bearer {TOKEN}", TOKEN, [], None),
    ("198.51.100.4", "Bearer wrong-token-wrong-token", TOKEN, [], 401),
    ("198.51.100.4", None, None, [], 403),
])
def test_who_may_scrape(remote, auth, token, allowed, status):
    backend = mock.Mock(spec=["runtime"])
    backend.runtime.config = config.ApplianceConfig(metrics_token=token, metrics_allow=allowed)
    denied = metrics._denied(_request(remote, auth), backend)
    assert (denied.status if denied is not None else None) == status
