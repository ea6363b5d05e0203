"""The dialer spreads its calls over every device's lines: least recently used free line first,
through the real line manager, GSM drivers on simulated modems and an E1 span simulator."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from dialbox.appliance import Appliance, Settings
from firmware import profiles
from firmware.clock import run_virtual

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=3))).timestamp()
GSM = [f"gsm{i}" for i in range(4)]


def _calls_per_line(data, minutes: float) -> tuple[Counter, list[str]]:
    async def main(clock):
        # The simulated default: a 4-port GSM gateway, then one E1 span (30 B-channels), in
        # that profile order; three operators use a few lines at a time.
        app = Appliance(Settings(simulate=True, operators=3, data=data, seed=7,
                                 wrap_mean_s=5.0, compliance="none", mode="progressive",
                                 sim_transport="tcp"), clock=clock)
        await app.start()
        try:
            await clock.sleep(minutes * 60)
            lines = [ln.name for ln in app.lines.lines() if ln.in_service]
            await app.store.flush()
            rows = app.store.db.execute("SELECT line, COUNT(*) FROM attempts GROUP BY line")
            return Counter(dict(rows.fetchall())), lines
        finally:
            await app.stop()

    return run_virtual(main, wall0=NOON)


def test_calls_spread_over_every_devices_lines_least_recently_used_first(tmp_path):
    calls, in_service = _calls_per_line(tmp_path / "d", 12)
    assert set(GSM) < set(in_service) and len(in_service) == 34, in_service
    # Before: the first free line in profile order, so the GSM ports took nearly every call
    # and the span's channels stayed idle.
    assert set(calls) == set(in_service), sorted(set(in_service) - set(calls))
    assert max(calls.values()) - min(calls.values()) <= 1, calls
    assert sum(calls[g] for g in GSM) <= 4 * max(calls.values())


def test_a_sim_at_its_days_limit_leaves_the_work_to_the_other_lines(tmp_path):
    data = tmp_path / "d"
    (data / "profiles").mkdir(parents=True)
    bundled = profiles.resolve("sim-gsm-4").read_text()
    assert "calls_per_sim_per_day: 250" in bundled
    # The shop's own copy of the profile: each SIM may make 2 calls a day.
    (data / "profiles" / "sim-gsm-4.yaml").write_text(
        bundled.replace("calls_per_sim_per_day: 250", "calls_per_sim_per_day: 2"))
    calls, in_service = _calls_per_line(data, 24)
    assert all(calls[g] == 2 for g in GSM), calls  # used, up to the limit and no further
    span = [ln for ln in in_service if ln not in GSM]
    assert min(calls[ln] for ln in span) >= 3, calls  # the span's channels went on
