"""The event loop under a list nobody may be called from: loop lag and /healthz latency.

Run: python3 -m benchmarks.loop_bench [--leads 200000] [--seconds 20] [--repeat 3] [--inline]
                                      [--dashboards N]

200,000 leads in Moscow time at 03:30 local (ru-230fz: nobody may be called before 08:00), so
every lead the dialer looks at is refused by the law and the refusal written with its reason.
150 of 160 lines are busy with calls, 10 operators of 60 are free, so the dialer keeps looking
for a lead. On the same event loop: a 10 ms ticker measuring how late it wakes (loop lag) and an
aiohttp server answering /healthz, asked every 100 ms from another thread. Reported per repeat:
time from the dialer's start to the first /healthz answer, loop lag p50/p99/max, /healthz
p50/p99, and how many refusals were written meanwhile. The store's work runs on its writer
thread, as in the box; ``--inline`` runs it on the event loop (as before the writer).
``--dashboards N``: N supervisors' dashboards open, their tiles counted 4 times a second (on the
reader thread, or on the loop with ``--inline``).
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

NIGHT = datetime.fromisoformat("2026-11-25T03:30:00+03:00").timestamp()


class NightClock:
    """The injected clock at 03:30 Moscow time, advancing with the loop."""

    scale = 1.0
    virtual = False

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def wall(self) -> float:
        return NIGHT + self.now()

    async def sleep(self, s: float) -> None:
        await asyncio.sleep(s)

    def real(self, s: float) -> float:
        return s


class BusyLines:
    """160 lines, 150 of them carrying calls: the Line API as the dialer sees it."""

    def __init__(self) -> None:
        from firmware.lineapi import LineInfo
        self.names = [f"l{i}" for i in range(160)]
        self.info = [LineInfo(n, "e1", "answered" if i < 150 else "idle", True,
                              details={"number": f"+7495000{i:04d}"})  # the law wants it
                     for i, n in enumerate(self.names)]

    def subscribe(self, sink) -> None:
        pass

    def lines(self):
        return self.info

    def free_lines(self):
        return self.names[150:]

    def ring_timeout_s(self, line: str) -> float:
        return 60.0

    async def dial(self, line, number, *, call_id, min_ring_s=0.0):
        raise AssertionError("the law allows nobody at 03:30")


def build(path: Path, leads: int) -> None:
    from controller.store import AccountWriter, Store
    s = Store(path)
    with s.tx():
        cid = s.campaign("night", create=True)
        w = AccountWriter(s, cid, now=NIGHT - 86400)
        for i in range(leads):
            w.add({"account_id": f"N{i:07d}", "tz": "Europe/Moscow", "dpd": 30},
                  [(f"+79{i:09d}", "mobile")])
        w.finish()
    s.close()


def _healthz_client(port: int, stop: threading.Event, out: list, first: list, t0: float):
    while not stop.is_set():
        start = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            took = time.perf_counter() - start
            out.append(took)
            if not first:
                first.append(time.perf_counter() - t0)
        except OSError:
            pass
        time.sleep(0.1)


async def run_once(path: Path, seconds: float, inline: bool = False, dashboards: int = 0
                   ) -> dict:
    from aiohttp import web

    from controller.dialer import Dialer
    from controller.operators import OperatorPool
    from controller.store import Store
    from dialbox.appliance import _campaign_counts  # imported before the clock starts
    clock = NightClock()
    store = Store(path, clock)  # type: ignore[arg-type]
    store.db.execute("UPDATE accounts SET next_due_at=0, status='active', hold_reason=NULL")
    store.db.execute("DELETE FROM decisions")
    if not inline:
        store.start_writer()
    ops = OperatorPool(60, clock)  # type: ignore[arg-type]
    for op in ops.ops[:50]:
        ops.reserve(f"busy-{op.position}")
    dialer = Dialer(store, BusyLines(), ops, clock, campaign_id=1,  # type: ignore[arg-type]
                    campaign_name="night", compliance_profile="ru-230fz")

    app = web.Application()
    app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    lags: list[float] = []
    stop_tick = False

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop_tick:
            want = loop.time() + 0.01
            await asyncio.sleep(0.01)
            lags.append(max(0.0, loop.time() - want))

    health: list[float] = []
    first: list[float] = []
    stop = threading.Event()
    t0 = time.perf_counter()
    client = threading.Thread(target=_healthz_client, args=(port, stop, health, first, t0))
    async def dashboard() -> None:  # a supervisor's page: its tiles 4 times a second
        while not stop_tick:
            await store.read(_campaign_counts, [1], clock.wall())
            await asyncio.sleep(0.25)

    tick = asyncio.get_running_loop().create_task(ticker())
    pages = [asyncio.get_running_loop().create_task(dashboard()) for _ in range(dashboards)]
    await dialer.start()
    client.start()
    await asyncio.sleep(seconds)
    stop.set()
    await dialer.stop()
    if store.writer is not None:
        await store.writer.drain()
    stop_tick = True
    await tick
    await asyncio.gather(*pages)
    await asyncio.get_running_loop().run_in_executor(None, client.join)
    await runner.cleanup()
    refused = store.db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    await ops.stop()
    store.close()
    lags.sort()
    health.sort()

    def pct(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")
    return {"first_healthz_s": first[0] if first else float("nan"),
            "lag_p50_ms": pct(lags, 0.5), "lag_p99_ms": pct(lags, 0.99),
            "lag_max_ms": lags[-1] * 1000 if lags else float("nan"),
            "healthz_p50_ms": pct(health, 0.5), "healthz_p99_ms": pct(health, 0.99),
            "healthz_n": len(health), "refusals_written": refused}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dashboards", type=int, default=0,
                    help="supervisors' dashboards open (their tiles counted 4 times a second)")
    ap.add_argument("--inline", action="store_true",
                    help="store work on the event loop, as before the writer thread")
    args = ap.parse_args()
    import logging

    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    path = Path(tempfile.gettempdir()) / f"dialbox-loop-bench-{args.leads}.sqlite3"
    if not path.exists():
        t = time.perf_counter()
        build(path, args.leads)
        print(f"built {args.leads} leads in {time.perf_counter() - t:.1f} s")
    runs = [asyncio.run(run_once(path, args.seconds, args.inline, args.dashboards))
            for _ in range(args.repeat)]
    for r in runs:
        print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in r.items()))
    keys = [k for k in runs[0] if k != "healthz_n"]
    print("median: " + " ".join(f"{k}={statistics.median(r[k] for r in runs):.1f}"
                                for k in keys))


if __name__ == "__main__":
    main()
