"""The clock as a compliance input: the kernel's sync state read with adjtimex; an unsynchronised
clock holds automatic dialing (unless turned off) and is shown on the dashboard and console."""
from __future__ import annotations

import asyncio

import pytest

from dialbox import clocksync, config
from dialbox.appliance import Settings
from dialbox.clocksync import ClockState
from tests.gsmsim import until
from tests.runbox import dashboard, free_port, running


def test_the_kernel_is_asked_with_adjtimex():
    state = clocksync.read_kernel()
    assert 0 <= state.state <= 5  # a real answer from this machine's kernel, not an error
    assert state.max_error_ms is not None and state.max_error_ms >= 0
    assert state.synchronized == (state.state != 5 and "NOT" not in state.text)


class Kernel:
    """A simulated kernel clock state for the runtime to read."""

    def __init__(self, synced: bool) -> None:
        self.synced = synced
        self.reads = 0

    def __call__(self) -> ClockState:
        self.reads += 1
        return ClockState(True, 0, 12.5, 1.0) if self.synced else ClockState(False, 5, 16000.0,
                                                                             16000.0)


def _box(tmp_path, monkeypatch, kernel: Kernel, clock_cfg: str):
    monkeypatch.setattr(clocksync, "READER", kernel)
    f = tmp_path / "dialbox.yaml"
    f.write_text(f"data: data\nlisten: [127.0.0.1:{free_port()}]\nsimulate: true\n{clock_cfg}",
                 encoding="utf-8")
    cfg = config.load(f)
    return running(cfg, Settings(simulate=True, data=cfg.data, operators=3, compliance="none",
                                 time_scale=20, seed=5))


def _attempts(app) -> int:
    return int(app.store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])


async def test_an_unsynchronised_clock_holds_dialing_until_it_is_synchronised(tmp_path,
                                                                           monkeypatch):
    kernel = Kernel(synced=False)
    async with _box(tmp_path, monkeypatch, kernel,
                    "clock:\n  require_sync: true\n  check_interval_s: 20\n") as (app, _):
        await until(lambda: app.health()["lines"]["in_service"] == 34, timeout=30)
        await asyncio.sleep(2.0)  # 40 clock seconds with free lines and operators
        assert _attempts(app) == 0
        assert "clock" in app.runner.holds
        clock_item = next(i for i in app.runtime.boot.items if i.what == "clock")
        assert not clock_item.ok and "held" in clock_item.detail
        page = await dashboard(app)
        assert 'id="clock-alert"' in page and "Автоматический обзвон приостановлен до" in page.split('id="clock-alert"')[1].split("</p>")[0]
        kernel.synced = True  # chrony caught up; the periodic check sees it
        await until(lambda: _attempts(app) > 0, timeout=20)
        assert not app.runner.holds
        assert kernel.reads >= 2
        assert 'id="clock-alert"' not in await dashboard(app)


async def test_the_shop_may_turn_the_hold_off(tmp_path, monkeypatch):
    async with _box(tmp_path, monkeypatch, Kernel(synced=False),
                    "clock:\n  require_sync: false\n") as (app, _):
        await until(lambda: _attempts(app) > 0, timeout=30)
        assert not app.runner.holds
        box = app.status()["box"]["clock"]
        assert box["synchronized"] is False and box["holding"] is False
        page = await dashboard(app)
        assert 'id="clock-alert"' in page
        assert "приостановлен" not in page.split('id="clock-alert"')[1].split("</p>")[0]


@pytest.mark.parametrize("text,ok", [("clock:\n  require_sync: yes please\n", False),
                                     ("clock:\n  check_interval_s: 0\n", False),
                                     ("clock:\n  require_sync: false\n", True)])
def test_clock_settings_are_checked(tmp_path, text, ok):
    f = tmp_path / "dialbox.yaml"
    f.write_text(text, encoding="utf-8")
    from firmware.yamlsrc import Source
    assert (config.check(Source.read(f)) == []) == ok


async def test_the_disk_and_the_clock_hold_dialing_as_one(tmp_path, monkeypatch):
    """One set of reasons holds every campaign, one started meanwhile too; dialing resumes
    only when the last reason is lifted, and the dashboard shows them all."""
    from controller import campaigns
    from dialbox.recording import DiskPolicy
    kernel = Kernel(synced=False)
    async with _box(tmp_path, monkeypatch, kernel,
                    "clock:\n  require_sync: true\n  check_interval_s: 3600\n") as (app, _):
        await until(lambda: app.health()["lines"]["in_service"] == 34, timeout=30)
        free_mb = app.recording.check_disk()["free_mb"]
        app.recording.policy = DiskPolicy(free_mb * 4, free_mb * 2)  # the disk counts as full
        app.recording.check_disk()
        assert set(app.runner.holds.as_dict()) == {"clock", "disk"}
        shown = app.status()["campaign"]["hold_reason"]
        assert "clock is not synchronised" in shown and "recordings disk" in shown
        campaigns.create(app.store, "Вторая", who="test", source="test", creditor="Банк",
                         compliance="none")
        campaigns.act(app.store, "Вторая", "start", who="test", source="test", data=app.settings.data)
        await app.runner.reconcile()
        assert len(app.runner.dialers) == 2
        assert all(d.holds is app.runner.holds and d.hold_reason == shown
                   for d in app.runner.dialers.values())
        kernel.synced = True
        app.runtime.extras["clock"].check()  # the clock is right: the disk still holds
        assert set(app.runner.holds.as_dict()) == {"disk"}
        await asyncio.sleep(2.0)  # 40 clock seconds with free lines and operators
        assert _attempts(app) == 0
        app.recording.policy = DiskPolicy(1.0, 0.5)  # room again
        app.recording.check_disk()
        assert not app.runner.holds and app.runner.hold_reason is None
        await until(lambda: _attempts(app) > 0, timeout=20)
