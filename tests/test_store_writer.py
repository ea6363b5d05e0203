"""SQLite work off the event loop: the store's writer thread, its group commits, and the
order "attempt committed, then the number dialed", through the real GSM driver and modem."""
from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from datetime import datetime

import pytest

from controller.dialer import Dialer
from controller.operators import OperatorPool
from controller.store import Store
from dialbox import sdnotify
from firmware.clock import Clock, run_virtual
from firmware.errors import UserError
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule
from firmware.linemanager import LineManager
from firmware.sim.modem import SimModem
from tests.gsmsim import population, profile_for

NOON = datetime.fromisoformat("2026-11-25T12:00:00+03:00").timestamp()  # a Wednesday
_connect = sqlite3.connect
# Every commit takes SLOW_S on the slow disk; a loop that waited for one would lag at least that
# much. LAG_S leaves room for a loaded machine's scheduling (up to 0.3 s seen at load 8, niced).
SLOW_S, LAG_S = 0.6, 0.4


class SlowFsync(sqlite3.Connection):
    """A disk whose fsync takes ``delay`` seconds: every COMMIT waits that long."""

    delay = 0.0
    commits_on: list[str] = []  # thread names that committed while slow

    def execute(self, sql, *args):
        if SlowFsync.delay and sql.lstrip()[:6].upper() == "COMMIT":
            import threading
            SlowFsync.commits_on.append(threading.current_thread().name)
            time.sleep(SlowFsync.delay)
        return super().execute(sql, *args)


@pytest.fixture
def slow_disk(monkeypatch):
    monkeypatch.setattr(sqlite3, "connect",
                        lambda *a, **k: _connect(*a, **k, factory=SlowFsync))
    SlowFsync.delay = 0.0
    SlowFsync.commits_on = []
    yield SlowFsync
    SlowFsync.delay = 0.0


class NoonClock(Clock):
    """Real time (the lag is real), the wall at noon in Moscow whatever the date."""

    def wall(self) -> float:
        return NOON + self.now()


def _fill(store: Store, n: int) -> int:
    cid = store.campaign("c", create=True)
    with store.tx():
        for i in range(n):
            store.upsert_account(cid, {"account_id": f"A{i}", "tz": "Europe/Moscow"},
                                 [(f"+791234567{i:02d}", "mobile")])
    return cid


async def test_slow_fsync_never_lags_the_loop_and_attempts_are_on_disk_before_atd(
        tmp_path, slow_disk):
    clock = NoonClock()
    path = tmp_path / "box.sqlite3"
    store = Store(path, clock)
    cid = _fill(store, 16)
    sims, drivers = [], []
    dialed: list[tuple[str, int]] = []  # (number, its attempts on disk when ATD arrived)

    def watch(sim: SimModem):
        real = sim._command

        def command(line: str) -> None:
            m = re.match(r"ATD(\+?\d+)", line.upper())
            if m:  # what a power cut now would keep: a fresh connection reads the file
                with _connect(path) as db:
                    n = db.execute("SELECT COUNT(*) FROM attempts WHERE number=?",
                                   (m.group(1),)).fetchone()[0]
                dialed.append((m.group(1), n))
            real(line)
        sim._command = command

    for i in range(4):
        sim = SimModem(f"m{i}", DIALECTS["sim800"],
                       population("answer", ring_mean_s=0.3, talk_mean_s=0.3), clock, seed=i)
        watch(sim)
        drivers.append(GsmModule(f"gsm{i}", await sim.start_tcp(),
                                 profile_for("sim800", health_interval_s=5), clock))
        sims.append(sim)
    lines = LineManager(drivers, clock)
    await lines.start()
    ops = OperatorPool(4, clock, wrap_mean_s=0.1, wrap_sd_s=0.0, seed=1)
    lag = sdnotify.LoopLag()
    monitor = asyncio.get_running_loop().create_task(sdnotify.heartbeat(lag, period_s=0.02))
    dialer = None
    try:
        for _ in range(200):
            if len(lines.free_lines()) == 4:
                break
            await asyncio.sleep(0.05)
        assert len(lines.free_lines()) == 4
        store.start_writer()
        dialer = Dialer(store, lines, ops, clock, campaign_id=cid, campaign_name="c",
                        mode="progressive", compliance_profile="ru-230fz")
        await asyncio.sleep(0.2)
        lag.worst = 0.0
        slow_disk.delay = SLOW_S
        await dialer.start()
        for _ in range(600):
            done = store.db.execute("SELECT COUNT(*) FROM attempts WHERE state='done'"
                                    ).fetchone()[0]
            if done >= 4:
                break
            await asyncio.sleep(0.05)
        assert done >= 4
    finally:
        if dialer is not None:
            await dialer.stop()
        slow_disk.delay = 0.0
        monitor.cancel()
        await asyncio.gather(monitor, return_exceptions=True)
        await lines.stop()
        await ops.stop()
        for sim in sims:
            await sim.stop()
        store.close()
    # Every commit happened on the writer thread, and the loop never waited for one.
    assert slow_disk.commits_on and set(slow_disk.commits_on) == {"store-writer"}
    assert lag.worst < LAG_S, f"the loop stalled {lag.worst * 1000:.0f} ms behind a commit"
    # Each number was dialed only once its attempt was committed to the file.
    assert len(dialed) >= 4 and all(n == 1 for _, n in dialed), dialed


async def test_writes_behind_a_slow_commit_share_one_commit_in_order_each_on_its_own(
        tmp_path, slow_disk):
    store = Store(tmp_path / "w.sqlite3", NoonClock())
    cid = _fill(store, 1)
    writer = store.start_writer()
    slow_disk.delay = 0.2

    def add(s: Store, i: int) -> int:
        s.block_caller(f"+7999000{i:04d}", "abusive", "test")
        if i == 7:
            raise UserError("job {i} fails", i=i)
        return i

    futs = [writer.submit(add, i) for i in range(20)]
    results = await asyncio.gather(*futs, return_exceptions=True)
    assert results[:7] == list(range(7)) and results[8:] == list(range(8, 20))
    assert isinstance(results[7], UserError)
    # Job 7's write was undone, the others' kept; 20 jobs took far fewer commits.
    blocked = {r[0] for r in store.db.execute("SELECT e164 FROM phone_lists")}
    assert len(blocked) == 19 and "+79990000007" not in blocked
    assert writer.commits <= 3, writer.commits
    # A read given to the writer sees the writes given before it; close() writes what waits.
    store.submit(Store.hold, 1, "test", "held by the test", campaign_id=cid)
    held = await store.run(lambda s: s.db.execute(
        "SELECT COUNT(*) FROM decisions WHERE code='test'").fetchone()[0])
    assert held == 1
    store.submit(Store.hold, 1, "test2", "held at close", campaign_id=cid)
    store.close()
    with _connect(tmp_path / "w.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM decisions WHERE code='test2'").fetchone()[0] == 1


def test_virtual_time_waits_for_the_writer(tmp_path, slow_disk):
    # On a virtual-time loop, a commit that takes real time must not let the clock jump
    # past the time-outs of those who wait for it.
    async def main(clock):
        store = Store(tmp_path / "v.sqlite3", clock)
        store.start_writer()
        slow_disk.delay = 0.3
        t0 = clock.now()
        try:
            await asyncio.wait_for(store.run(Store.block_caller, "+79990001122", "x", "t"), 5)
        finally:
            slow_disk.delay = 0.0
            store.close()
        return clock.now() - t0

    assert run_virtual(main, wall0=NOON) < 1.0


N_NIGHT = 320


async def test_leads_held_at_night_on_a_slow_disk_are_refused_in_bulk_off_the_loop(
        tmp_path, slow_disk):
    # Debtors asleep in Moscow: each is looked at and refused with its reason; on a slow disk
    # the loop must not wait for a commit, and the refusals share commits.
    from controller import dialer as dialer_mod
    from tests.test_dialer import FakeClock, FakeLines, at
    store = Store(tmp_path / "n.sqlite3", FakeClock(at("2026-11-25T03:30:00+03:00")))
    cid = store.campaign("c", create=True)
    with store.tx():
        for i in range(N_NIGHT):
            store.upsert_account(cid, {"account_id": f"N{i}", "tz": "Europe/Moscow"},
                                 [(f"+7914{i:07d}", "mobile")])
    ops = OperatorPool(10, store.clock)  # type: ignore[arg-type]
    d = Dialer(store, FakeLines([f"l{i}" for i in range(20)]), ops, store.clock,  # type: ignore
               campaign_id=cid, campaign_name="c", compliance_profile="ru-230fz")
    d.running = True
    writer = store.start_writer()
    lag = sdnotify.LoopLag()
    monitor = asyncio.get_running_loop().create_task(sdnotify.heartbeat(lag, period_s=0.02))
    slow_disk.delay = SLOW_S
    try:
        for _ in range(1000):
            await d._cycle()
            await writer.drain()
            if d.held >= N_NIGHT:
                break
    finally:
        slow_disk.delay = 0.0
        monitor.cancel()
        await asyncio.gather(monitor, return_exceptions=True)
        await ops.stop()
        store.close()
    assert d.held == N_NIGHT
    with _connect(tmp_path / "n.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM decisions WHERE code='outside_hours'"
                          ).fetchone()[0] == N_NIGHT
    assert writer.commits <= N_NIGHT // dialer_mod.LEADS_PER_JOB + 4, writer.commits
    assert lag.worst < LAG_S, f"the loop stalled {lag.worst * 1000:.0f} ms"


async def test_the_dashboard_feed_counts_on_the_reader_thread(tmp_path, monkeypatch):
    # The feed asks 4 times a second; over a list of 200,000 the counts take about 100 ms.
    import threading

    from dialbox.appliance import Appliance, Settings
    app = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", seed=4,
                             compliance="none", time_scale=25.0))
    await app.start()
    try:
        counted_on: list[str] = []
        real = Store.counters

        def counters(self, campaign_id):
            counted_on.append(threading.current_thread().name)
            return real(self, campaign_id)
        monkeypatch.setattr(Store, "counters", counters)
        await app.store.flush()
        live = await app.status_live()
        assert counted_on and all(n.startswith("store-reader") for n in counted_on)
        shown = {c["name"]: c["counters"] for c in live["campaigns"]}
        # The same tiles as the page's own status (its counts read there and then).
        again = {c["name"]: c["counters"] for c in app.status()["campaigns"]}
        assert shown.keys() == again.keys() and all(
            shown[k]["leads_left"] == again[k]["leads_left"] and "held" in shown[k]
            for k in shown)
        # Three pages asking at once share one count on the reader.
        counted_on.clear()
        await asyncio.sleep(0.25)  # the last count is old enough to be taken again
        await asyncio.gather(*(app.status_live() for _ in range(3)))
        assert len(counted_on) == len(shown)
    finally:
        await app.stop()


async def test_the_nightly_purge_never_uses_the_loops_connection_from_a_thread(tmp_path):
    # A thread writing on the loop's connection shares its transactions: a purge in a pool
    # thread could commit or roll back what the loop wrote meanwhile. The store's own threads
    # do its SQL; the pool only deletes files.
    import threading

    from controller import recordings
    from dialbox.recording import RecordingService
    from firmware.media.plane import MediaPlane
    from firmware.media.recorder import Recorder
    from tests.test_dialer import FakeClock
    clock = FakeClock(NOON)
    store = Store(tmp_path / "dialbox.sqlite3", clock)  # type: ignore[arg-type]
    for i in range(5):
        old = tmp_path / "recordings" / f"old{i}.opus"
        old.parent.mkdir(parents=True, exist_ok=True)
        old.write_bytes(b"OggS old")
        recordings.started(store, data=tmp_path, call_id=f"old{i}", line="gsm0", path=old,
                           started_at=NOON - 1200 * 86400, channels=2)
        recordings.finished(store, call_id=f"old{i}", duration_s=3.0, sha256="x" * 64, size=8,
                            now=NOON)
    store.start_writer()
    used_by: set[str] = set()
    store.db.set_trace_callback(lambda _sql: used_by.add(threading.current_thread().name))
    svc = RecordingService(store, None, Recorder(MediaPlane(clock), tmp_path / "recordings",
                                                 clock), tmp_path, clock,
                           operator_of=lambda c: None, retention_days=3 * 365 + 1)
    try:
        result = await svc.purge()
        assert sorted(result.removed) == [f"old{i}" for i in range(5)]
        assert used_by <= {threading.main_thread().name}, used_by
        assert store.db.execute("SELECT COUNT(*) FROM recordings WHERE state='purged'"
                                ).fetchone()[0] == 5
    finally:
        store.close()


async def test_a_campaign_starting_reads_its_month_of_answers_off_the_loop(tmp_path, monkeypatch):
    # The pacer's window is refilled from the stored answers of the last 30 days (a busy
    # campaign's hundreds of thousands of attempts) on the reader thread, then replayed.
    import threading

    from controller import dialer as dialer_mod
    from tests.test_dialer import FakeClock, FakeLines
    store = Store(tmp_path / "a.sqlite3", FakeClock(NOON))  # type: ignore[arg-type]
    cid = _fill(store, 2)
    lead = store.next_lead(cid, NOON)
    store.begin_attempt(cid, lead, "l0", "c1", None, now=NOON - 3600)
    store.finish_attempt("c1", outcome="answered", q850=16, reason="", ring_s=3, talk_s=0,
                         abandoned=True, now=NOON - 3500)
    store.start_writer()
    read_on: list[str] = []
    real = dialer_mod._answered_since
    monkeypatch.setattr(dialer_mod, "_answered_since", lambda *a: (
        read_on.append(threading.current_thread().name), real(*a))[1])
    ops = OperatorPool(1, store.clock)  # type: ignore[arg-type]
    d = Dialer(store, FakeLines(["l0"]), ops, store.clock, campaign_id=cid,  # type: ignore
               campaign_name="c", managed=True, compliance_profile="ru-230fz")
    try:
        await d.start()
        assert read_on and read_on[0].startswith("store-reader")
        assert d.pacer.window.live == 1 and d.pacer.window.abandoned == 1
    finally:
        await d.stop()
        await ops.stop()
        store.close()
