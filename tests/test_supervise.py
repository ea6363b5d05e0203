"""Supervision: dead tasks restarted with backoff and counted; a module that stops answering is
reset by its profile's method, then parked after N failures without holding up the others;
systemd's watchdog is pinged from the event loop, so a stuck loop stops the pings."""
from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

from cext import linestate_codes as C
from dialbox import sdnotify
from dialbox.supervise import Supervisor
from firmware.clock import Clock
from tests.gsmsim import modem_and_driver, until
from tests.runbox import dashboards, free_port, running


async def test_a_task_that_dies_is_restarted_with_growing_backoff_and_counted():
    clock = Clock(100)  # one clock second is 10 ms
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(clock.now())
        if len(runs) <= 3:
            raise RuntimeError(f"boom {len(runs)}")
        await asyncio.Event().wait()

    sup = Supervisor(clock, backoff_s=1.0, backoff_max_s=60.0)
    sup.run("flaky", flaky)
    await until(lambda: len(runs) == 4, timeout=5)
    child = sup.snapshot()[0]
    assert child["failures"] == 3 and child["state"] == "running"
    assert child["last_error"] == "RuntimeError: boom 3"
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert gaps[0] >= 1.0 and gaps[1] >= 2.0 and gaps[2] >= 4.0  # doubling backoff
    await sup.stop()
    assert sup.snapshot()[0]["state"] == "stopped"


async def test_an_adopted_task_that_ends_is_restarted():
    clock = Clock(100)
    box: dict = {}
    starts = []

    def start() -> None:
        starts.append(1)
        box["task"] = asyncio.get_running_loop().create_task(asyncio.Event().wait())

    start()
    sup = Supervisor(clock, backoff_s=0.5, poll_s=0.5)
    sup.watch("worker", lambda: box["task"], start)
    box["task"].cancel()
    await until(lambda: len(starts) == 2, timeout=5)
    assert not box["task"].done()
    assert sup.snapshot()[0]["failures"] == 1 and sup.snapshot()[0]["last_error"] == "cancelled"
    await sup.stop()
    box["task"].cancel()
    await asyncio.gather(box["task"], return_exceptions=True)


async def test_a_module_that_stops_answering_is_reset_then_parked_and_others_go_on():
    async with modem_and_driver("sim800", health_interval_s=0.3, max_failures=2) as (
            sick, drv, rec), \
            modem_and_driver("sim800", "answer", health_interval_s=0.3) as (well, drv2, rec2):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        await rec2.wait_for(C.EV_HW_IN_SERVICE)
        n = len(rec.reports)
        sick.inject("garbage")  # answers, but nothing a driver can read
        await until(lambda: drv.parked, timeout=30)
        assert "AT+CFUN=1,1" in sick.commands  # the profile's reset method was tried first
        oos = [r for r in rec.reports[n:] if r.event == C.EV_HW_OUT_OF_SERVICE][-1]
        assert "taken out of service after 2 failed recoveries" in oos.reason
        assert drv.health()["parked"] is True
        # the healthy module kept working meanwhile
        await drv2.dial(0, "+79123456789")
        await rec2.wait_for(C.EV_HW_ANSWER, timeout=15)
        # once parked, the module is left alone until a person resets it
        sick.clear()
        quiet = len(sick.commands)
        await asyncio.sleep(1.0)
        assert len(sick.commands) == quiet and not drv.in_service
        n = len(rec.reports)
        await drv.reset(0, reason="console")
        await rec.wait_for(C.EV_HW_IN_SERVICE, after=n, timeout=20)
        assert not drv.parked and "ATE0" in sick.commands[quiet:]


async def test_an_unplugged_port_is_retried_not_parked(tmp_path):
    async with modem_and_driver("sim800", health_interval_s=0.3, max_failures=1,
                                link=tmp_path / "ttyUSB0") as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        sim.inject("vanish")
        (tmp_path / "ttyUSB0").unlink()  # udev removes the device's link
        await rec.wait_for(C.EV_HW_OUT_OF_SERVICE, timeout=10)
        await until(lambda: drv._failures >= 2, timeout=20)
        assert not drv.parked


def _listen(path: str) -> tuple[socket.socket, list, threading.Thread]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    got: list[tuple[float, str]] = []

    def read() -> None:
        while True:
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            got.append((time.monotonic(), data.decode()))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return sock, got, t


async def test_watchdog_pings_come_from_the_loop_and_stop_while_it_is_stuck(tmp_path,
                                                                             monkeypatch):
    sock, got, _ = _listen(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    lag = sdnotify.LoopLag()
    task = asyncio.create_task(sdnotify.heartbeat(lag, watchdog_s=0.4))
    try:
        await asyncio.sleep(0.6)
        before = len(got)
        assert before >= 2 and all(m == "WATCHDOG=1" for _, m in got)
        t0 = time.monotonic()
        time.sleep(0.8)  # the event loop is stuck: deliberately, to see the pings stop
        t1 = time.monotonic()
        await asyncio.sleep(0.5)
        during = [t for t, _ in got if t0 + 0.05 < t < t1]
        assert during == []
        assert len(got) > before  # and they come back once the loop runs again
        assert lag.worst >= 0.7
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sock.close()


def test_the_watchdog_period_is_only_taken_for_this_process(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sdnotify.watchdog_interval_s() is None
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


@pytest.mark.skipif(not os.path.exists("/usr/bin/systemd-analyze") and not os.environ.get("CI"),
                    reason="systemd-analyze missing (CI installs systemd)")
def test_the_shipped_unit_file_is_valid():
    import subprocess
    from pathlib import Path
    unit = Path(__file__).parent.parent / "packaging" / "dialbox.service"
    text = unit.read_text(encoding="utf-8")
    assert "Type=notify" in text and "WatchdogSec=" in text and "NotifyAccess=main" in text
    # the CPU and the disk first for the box (the media ticks), but no real-time policy
    assert "\nNice=-10\n" in text and "\nCPUWeight=1000\n" in text
    assert "\nIOSchedulingClass=best-effort\n" in text and "CPUSchedulingPolicy" not in text
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                       capture_output=True, text=True)
    # verify checks syntax and known directives; the binary path is not on this machine
    problems = [x for x in r.stderr.splitlines() if "is not executable" not in x]
    assert not problems, r.stderr


async def test_the_appliance_tells_systemd_it_is_ready_pings_and_stops(tmp_path):
    import signal
    import sys
    sock, got, _ = _listen(str(tmp_path / "notify"))
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", "run", "--simulate", "--data", str(tmp_path / "d"),
        "--http", f"127.0.0.1:{free_port()}", "--compliance", "none", "--time-scale", "20",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await until(lambda: any(m.startswith("READY=1") for _, m in got), timeout=60)
        ready = next(m for _, m in got if m.startswith("READY=1"))
        assert "STATUS=" in ready and "lines in service" in ready
        await until(lambda: sum(m == "WATCHDOG=1" for _, m in got) >= 3, timeout=10)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        sock.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert any(m == "STOPPING=1" for _, m in got)


async def test_dead_dialer_and_media_tasks_are_restarted_and_shown_on_the_dashboard(tmp_path):
    from dialbox import config
    from dialbox.appliance import Settings
    cfg = config.ApplianceConfig(data=tmp_path / "d", listen=[f"127.0.0.1:{free_port()}"],
                                 simulate=True)
    settings = Settings(simulate=True, data=cfg.data, operators=1, compliance="none",
                        time_scale=1)  # the media plane runs in real time only
    async with running(cfg, settings) as (app, _):
        first = app.runner._tasks[1]
        await _kill(first)  # the campaigns' dialing loop dies (as a bug would end it)
        await until(lambda: app.runner._tasks[1] is not first and
                    not app.runner._tasks[1].done(), timeout=10)
        turns = next(c for c in app.runtime.supervisor.snapshot()
                     if c["name"] == "campaigns turns")
        assert turns["failures"] == 1 and turns["state"] == "running"
        ru, en = await dashboards(app, "ru", "en")
        assert 'id="tasks-failing"' in ru and "<b>очерёдность кампаний</b>: 1 × отменена" in ru
        assert "<b>campaigns turns</b>: 1 × cancelled" in en
        tick = app.media._task
        await _kill(tick)  # the media plane's 20 ms tick dies too
        await until(lambda: app.media.running and app.media._task is not tick, timeout=10)
        media = next(c for c in app.runtime.supervisor.snapshot() if c["name"] == "media plane")
        assert media["failures"] == 1


async def _kill(task: asyncio.Task) -> None:
    """End a task for good (Python 3.11's wait_for can swallow one cancellation)."""
    while not task.done():
        task.cancel()
        await asyncio.sleep(0.05)
