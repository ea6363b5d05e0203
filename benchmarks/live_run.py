"""A live run of the appliance on simulated hardware, as a shop would run it (issue 11).

Run: python3 -m benchmarks.live_run [--minutes 10] [--operators 60] [--leads 20000] [--json]

`dialbox run --simulate` in its own process, real time, with four E1 spans (120 B-channels)
and a 32-port EC25 gateway, ``--operators`` simulated operators, one predictive campaign of
``--leads`` debtors under ru-230fz. The debtors live in regions where the law allows calls
for the whole run (chosen from the real time at start), so the law's hours do not starve the
floor. Measured from outside the box, as a supervisor would see it:

- every minute, from the box's own database (read-only): answered calls, abandoned calls, and
  the campaign's abandon rate so far (the figure the law caps: at or under 3 % at every minute
  after the first);
- every 2 s: event-loop lag (p50, p99, worst, as the box reports on /metrics) and how long
  /healthz takes to answer;
- at the end: operator occupancy as the box persisted it (handling time over time on the
  floor), against what ``dialbox simulate`` predicts for the same floor (operators, lines in
  service, the simulated debtors' answer rates and durations, the campaign's abandon target)
  over the same time.

Nothing here reads the box's memory: the figures are what its database, /metrics and /healthz
say, so the same run works against a box on real hardware.
"""
from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "Демо-кампания"
# Regions and the zone the law reads for them (controller/compliance/regions.py).
REGIONS = {
    "Калининградская область": "Europe/Kaliningrad",
    "Москва": "Europe/Moscow",
    "Самарская область": "Europe/Samara",
    "Свердловская область": "Asia/Yekaterinburg",
    "Омская область": "Asia/Omsk",
    "Новосибирская область": "Asia/Novosibirsk",
    "Иркутская область": "Asia/Irkutsk",
    "Приморский край": "Asia/Vladivostok",
}


def callable_regions(now: datetime, minutes: float) -> list[str]:
    """Regions where ru-230fz allows calls (08-22 weekdays, 09-20 weekends) for the whole run,
    with a quarter of an hour to spare."""
    out = []
    for region, tz in REGIONS.items():
        for t in (now, datetime.fromtimestamp(now.timestamp() + minutes * 60 + 900, timezone.utc)):
            local = t.astimezone(ZoneInfo(tz))
            start, end = (9, 20) if local.weekday() >= 5 else (8, 22)
            if not start <= local.hour < end:
                break
        else:
            out.append(region)
    return out


def write_call_list(path: Path, n: int, regions: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["Номер договора", "ФИО", "Телефон", "Сумма долга", "Просрочка", "Регион"])
        for i in range(n):
            w.writerow([f"L-{i:06d}", f"Должник {i}", f"+7 913 {i:07d}",
                        f"{10000 + 37 * i},00", 30 + i % 60, regions[i % len(regions)]])


def write_profiles(folder: Path) -> list[Path]:
    """The bundled e1-4span and gw32-ec25 profiles; the spans with the official numbers the law
    wants shown (a real shop declares them; the gateway's SIMs tell theirs with AT+CNUM)."""
    e1 = yaml.safe_load((ROOT / "hw_profiles" / "e1-4span.yaml").read_text(encoding="utf-8"))
    for i, span in enumerate(e1["spans"]):
        span["calling_number"] = f"+7495100{i:04d}"
    gw = yaml.safe_load((ROOT / "hw_profiles" / "gw32-ec25.yaml").read_text(encoding="utf-8"))
    out = []
    for name, doc in (("e1-4span", e1), ("gw32-ec25", gw)):
        p = folder / f"{name}.yaml"
        p.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        out.append(p)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes, float]:
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read(), time.monotonic() - t0
    finally:
        conn.close()


def loop_lag(metrics: bytes) -> dict[str, float]:
    out = {}
    for line in metrics.decode().splitlines():
        if line.startswith("dialbox_event_loop_lag_seconds{"):
            q = line.split('quantile="', 1)[1].split('"', 1)[0]
            out[q] = float(line.rsplit(" ", 1)[1])
    return out


def minute_figures(db: Path, t0: float, t1: float) -> dict:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        cid = con.execute("SELECT id FROM campaigns WHERE name=?", (CAMPAIGN,)).fetchone()[0]
        q = ("SELECT COUNT(*), SUM(outcome='answered'), SUM(abandoned) FROM attempts WHERE "
             "campaign_id=? AND state != 'line_fault' AND created_at >= ? AND created_at < ?")
        dialed, answered, abandoned = con.execute(q, (cid, t0, t1)).fetchone()
        _, answered_all, abandoned_all = con.execute(q, (cid, 0, t1)).fetchone()
    finally:
        con.close()
    answered_all = answered_all or 0
    return {"dialed": dialed or 0, "answered": answered or 0, "abandoned": abandoned or 0,
            "abandon_rate_so_far": round((abandoned_all or 0) / answered_all, 4)
            if answered_all else 0.0}


def floor_figures(db: Path) -> dict:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        by_state = dict(con.execute(
            "SELECT state, SUM(seconds) FROM operator_time GROUP BY state").fetchall())
        target = con.execute(
            "SELECT abandon_target FROM campaigns WHERE name=?", (CAMPAIGN,)).fetchone()[0]
        lines = con.execute("SELECT COUNT(DISTINCT line) FROM attempts").fetchone()[0]
    finally:
        con.close()
    floor = sum(by_state.get(s, 0.0) for s in ("free", "reserved", "talking", "wrap_up"))
    handling = by_state.get("talking", 0.0) + by_state.get("wrap_up", 0.0)
    return {"occupancy": round(handling / floor, 4) if floor else None,
            "abandon_target": target, "lines_used": lines}


def predicted(operators: int, lines: int, seconds: float, abandon_target: float | None) -> dict:
    """What the floor simulation says for this floor: the simulated debtors' model
    (firmware/sim/population.py) and operators' wrap-up (controller/operators.py)."""
    from controller.campaigns import law_cap
    from controller.pacing import simulate
    from controller.pacing.scenario import Duration, Scenario
    from firmware.sim.population import Population
    pop = Population()
    sc = Scenario(
        name="live-run", operators=operators, lines=lines, duration_s=seconds,
        answer_prob=pop.answer_prob, busy_prob=pop.busy_prob,
        unreachable_prob=pop.unreachable_prob + pop.rejected_prob + pop.invalid_prob,
        time_to_answer_s=Duration(pop.ring_mean_s, pop.ring_sd_s),
        no_answer_timeout_s=pop.no_answer_timeout_s,
        talk_s=Duration(pop.talk_mean_s, pop.talk_sd_s), wrap_s=Duration(10.0, 4.0),
        abandon_target=abandon_target or law_cap("ru-230fz"), compliance="ru-230fz")
    return simulate(sc, "predictive", seed=1).to_dict()


def run(minutes: float, operators: int, leads: int, keep: Path | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="dialbox-live-")) if keep is None else keep
    work.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    regions = callable_regions(now, minutes)
    if not regions:
        raise SystemExit("no Russian region is within the law's hours for the whole run now")
    write_call_list(work / "list.csv", leads, regions)
    profiles = write_profiles(work)
    port = free_port()
    data = work / "data"
    cmd = [sys.executable, "-c", "from dialbox.cli import main; main()", "run", "--simulate",
           "--data", str(data),
           "--http", f"127.0.0.1:{port}", "--operators", str(operators),
           "--mode", "predictive", "--compliance", "ru-230fz", "--calllist",
           str(work / "list.csv"), "--seed", "2026", "--log-level", "WARNING"]
    for p in profiles:
        cmd += ["--profile", str(p)]
    log = (work / "box.log").open("w")
    box = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
    started = time.monotonic()
    db = data / "dialbox.sqlite3"
    samples: list[dict] = []
    bounds: list[tuple[float, float]] = []  # wall-clock minutes of the run
    try:
        while True:  # up when /healthz answers
            if box.poll() is not None:
                raise SystemExit(f"the box exited with {box.returncode}; see {work}/box.log")
            try:
                if get(port, "/healthz", 2.0)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        up_s = time.monotonic() - started
        t_wall0 = time.time()
        end = time.monotonic() + minutes * 60
        next_minute = time.monotonic() + 60
        minute_start = t_wall0
        cpu0 = _cpu_s(box.pid)
        while time.monotonic() < end:
            time.sleep(2.0)
            if box.poll() is not None:
                raise SystemExit(f"the box exited with {box.returncode}; see {work}/box.log")
            try:
                _, _, health_s = get(port, "/healthz")
                _, body, _ = get(port, "/metrics")
                samples.append({"health_s": health_s, **loop_lag(body)})
            except OSError as exc:
                samples.append({"health_s": None, "error": str(exc)})
            if time.monotonic() >= next_minute:
                t = time.time()
                bounds.append((minute_start, t))
                m = minute_figures(db, minute_start, t)
                minute_start, next_minute = t, next_minute + 60
                print(f"minute {len(bounds)}: dialed {m['dialed']} answered "
                      f"{m['answered']} abandoned {m['abandoned']} abandon rate so far "
                      f"{m['abandon_rate_so_far']:.2%}", file=sys.stderr, flush=True)
        cpu = _cpu_s(box.pid) - cpu0
    finally:
        box.send_signal(signal.SIGTERM)
        try:
            box.wait(60)
        except subprocess.TimeoutExpired:
            box.kill()
        log.close()
    elapsed = minutes * 60
    # Each minute's calls as they ended (a call answered in minute 3 may end in minute 5).
    minutes_out = [minute_figures(db, t0, t1) for t0, t1 in bounds]
    floor = floor_figures(db)
    sim = predicted(operators, floor["lines_used"], elapsed, floor["abandon_target"])
    health = sorted(s["health_s"] for s in samples if s.get("health_s") is not None)
    p99s = [s["0.99"] for s in samples if "0.99" in s]
    worst = [s["1.0"] for s in samples if "1.0" in s]
    after_first = [m["abandon_rate_so_far"] for m in minutes_out[1:]]
    return {
        "minutes": minutes, "operators": operators, "leads": leads, "regions": regions,
        "up_s": round(up_s, 1), "box_cpu_cores": round(cpu / elapsed, 3) if cpu else None,
        "per_minute": minutes_out,
        "abandon_rate_max_after_first_minute": max(after_first) if after_first else None,
        "loop_lag_p99_s_median": round(statistics.median(p99s), 4) if p99s else None,
        "loop_lag_p99_s_max": round(max(p99s), 4) if p99s else None,
        "loop_lag_worst_s": round(max(worst), 4) if worst else None,
        "healthz_p99_s": round(health[min(len(health) - 1, int(0.99 * len(health)))], 4)
        if health else None,
        "healthz_failures": sum(1 for s in samples if s.get("health_s") is None),
        "occupancy": floor["occupancy"], "lines_used": floor["lines_used"],
        "abandon_target": floor["abandon_target"],
        "predicted_occupancy": round(sim["agent_occupancy"], 4),
        "predicted_abandon_rate": round(sim["abandon_rate"], 4),
        "work": str(work),
    }


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--operators", type=int, default=60)
    ap.add_argument("--leads", type=int, default=20_000)
    ap.add_argument("--keep", type=Path, default=None,
                    help="work folder to keep (data, box log); default a temporary one")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    load = os.getloadavg()[0]
    out = run(a.minutes, a.operators, a.leads, a.keep)
    out["load_average_at_start"] = round(load, 2)
    if a.json:
        print(json.dumps(out, ensure_ascii=False))
        return
    for k, v in out.items():
        if k != "per_minute":
            print(f"{k:40} {v}")


if __name__ == "__main__":
    main()
