"""The crash test's harness: ``dialbox run`` killed with SIGKILL at random instants, restarted.

The box runs a predictive campaign (simulated operators, ``--simulate floor``) on simulated
SIM7600 modules that live in another process (tests/crash_sims.py) and on an E1 span whose
network side lives in a third (firmware.sim.e1_serve), so a call goes on at the "modem" and at
the network while the box is dead, as it would on real hardware. Every kill is SIGKILL: of the box
alone (its recorder worker finishes the files), or of its whole process group, as a power cut
would. The last run is stopped with SIGTERM. Then :func:`problems` compares the store with what
the modems and the network saw: every dial is one attempt, every debtor's outcome recorded once,
no lead dialed more often or sooner than its plan allows, every recording playable.
``python -m tests.crashbox --kills 50`` is the full run (the suite runs fewer).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from controller.segments import DEFAULT_RETRY_S
from tests.crash_sims import POPULATION
from tests.runbox import free_port

BOOT_TIMEOUT_S = 120.0
# After a modem reports a call's end, the box has this long to record it before a kill may
# excuse it from having been recorded (a loaded machine's turn of the loop and a commit).
RECORD_GRACE_S = 2.0
# A recording cut by a kill plays at least up to this long before the kill: the Ogg page kept
# back and the fsync period of the writer, plus the time from the answer to the first frame.
RECORDING_LOSS_S = 1.5


@dataclass
class CrashRun:
    data: Path
    kills: list[tuple[float, str]] = field(default_factory=list)  # (wall time, "box" | "group")
    calls: list[dict] = field(default_factory=list)  # what the modems and the network saw
    boots: int = 0
    logs: list[Path] = field(default_factory=list)
    stopped_at: float = float("inf")  # the clean stop (SIGTERM) of the last run
    cut_recordings: list[tuple[str, float, float]] = field(default_factory=list)  # s in, played


PROFILE = """name: crash-sim7600
description: simulated SIM7600 modules in another process
driver: gsm
dialect: sim7600
baud: 115200
audio: sim7600-cpcmreg
modules:
{modules}
init: ["AT+CLIP=1", "AT+CLCC=1", "AT+CNMI=2,1,0,1,0"]
hangup: AT+CHUP
call_progress: clcc
sms_mode: pdu
reset: cfun
limits:
  max_call_s: 1800
  ring_timeout_s: 40
health_interval_s: 2
command_timeout_s: 3
"""


E1_PROFILE = """name: crash-e1
description: an E1 span whose network side is simulated in another process
driver: e1
spans: {spans}
"""


async def _start_sims(tmp: Path, modems: int, e1_channels: str, seed: int):
    """The modems' process and the E1 network's; their outputs and the box's two profiles."""
    out, e1_out = tmp / "modem-calls.json", tmp / "network-calls.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.crash_sims", "--modems", str(modems), "--seed", str(seed),
        "--out", str(out), stdout=asyncio.subprocess.PIPE, start_new_session=True)
    e1 = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "firmware.sim.e1_serve", "--spans", "1", "--channels", e1_channels,
        "--dir", str(tmp / "e1"), "--out", str(e1_out), "--seed", str(seed + 50),
        "--population", json.dumps(POPULATION), stdout=asyncio.subprocess.PIPE,
        start_new_session=True)
    try:
        ports = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        spans = json.loads(await asyncio.wait_for(e1.stdout.readline(), 30))
    except BaseException:
        for p in (proc, e1):
            if p.returncode is None:
                p.kill()
            await p.wait()
        raise
    profile = tmp / "crash-sim7600.yaml"
    profile.write_text(PROFILE.format(modules="\n".join(
        f"  - {{name: {p['name']}, port: {p['port']}, audio_port: {p['audio']}}}"
        for p in ports)), encoding="utf-8")
    e1_profile = tmp / "crash-e1.yaml"
    e1_profile.write_text(E1_PROFILE.format(spans=json.dumps(
        [dict(span, ring_timeout_s=40) for span in spans])), encoding="utf-8")
    return [proc, e1], [out, e1_out], [e1_profile, profile]


async def _boot(tmp: Path, run: CrashRun, profiles: list[Path], seed: int):
    log = tmp / f"box-{run.boots}.log"
    run.logs.append(log)
    run.boots += 1
    with open(log, "wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialbox.cli", "run", "--simulate", "floor",
            *(a for p in profiles for a in ("--profile", str(p))), "--data", str(run.data),
            "--http", f"127.0.0.1:{free_port()}", "--mode", "predictive", "--compliance",
            "none", "--operators", "3", "--seed", str(seed), "--log-level", "WARNING",
            stdout=asyncio.subprocess.PIPE, stderr=err, start_new_session=True)
    return proc


async def _ready(proc) -> None:
    """Wait for the box's "dialbox is running" line."""
    async def read() -> None:
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(f"the box exited during boot (code {await proc.wait()})")
            if b"dialbox is running" in line:
                return
    await asyncio.wait_for(read(), BOOT_TIMEOUT_S)


async def _drain(proc) -> None:
    while await proc.stdout.read(65536):
        pass


async def crash_run(tmp: Path, *, kills: int, seed: int = 7, modems: int = 4,
                    e1_channels: str = "1-2", run_s: tuple[float, float] = (1.0, 8.0),
                    final_s: float = 6.0) -> CrashRun:
    """Kill the box ``kills`` times at random instants, restarting it; then stop it cleanly."""
    rng = random.Random(seed)
    run = CrashRun(tmp / "data")
    sims, calls_files, profile = await _start_sims(tmp, modems, e1_channels, seed)
    try:
        for k in range(kills + 1):
            proc = await _boot(tmp, run, profile, seed + k)
            drain = None
            try:
                # One kill in four falls inside the boot (recovery killed in its turn).
                if k < kills and rng.random() < 0.25:
                    await asyncio.sleep(rng.uniform(0.2, 3.0))
                else:
                    await _ready(proc)
                    drain = asyncio.ensure_future(_drain(proc))
                    await asyncio.sleep(rng.uniform(*run_s) if k < kills else final_s)
                if k == kills:
                    run.stopped_at = time.time()
                    proc.send_signal(signal.SIGTERM)
                    code = await asyncio.wait_for(proc.wait(), 60)
                    assert code == 0, f"the box's clean stop failed: {code}"
                    break
                how = "group" if k % 2 else "box"
                at = time.time()
                if proc.returncode is None:
                    if how == "group":
                        os.killpg(proc.pid, signal.SIGKILL)
                    else:
                        proc.send_signal(signal.SIGKILL)
                    run.kills.append((at, how))
                await proc.wait()
            finally:
                if proc.returncode is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()
                if drain is not None:
                    await drain
            if how == "box":  # its recorder worker finishes the files: let it, like init would
                await asyncio.sleep(0.5)
    finally:
        for proc in sims:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in sims:
            await asyncio.wait_for(proc.wait(), 60)
    for f in calls_files:
        run.calls += [c for c in json.loads(f.read_text(encoding="utf-8"))
                      if c.get("direction", "outbound") == "outbound"]
    (tmp / "kills.json").write_text(json.dumps(run.kills), encoding="utf-8")
    return run


# --- what must hold after the run ------------------------------------------------------------
FATE_OUTCOME = {"answer": {"answered"}, "busy": {"busy"}, "no_answer": {"no_answer"},
                "unreachable": {"unreachable"}, "rejected": {"rejected"}}
DEBTOR_OUTCOMES = ("answered", "busy", "no_answer", "rejected")
# The plan's shortest wait before a lead is dialed again (a line fault aside, which never reached
# the debtor): the campaign's retry delays, and the 15 minutes after an attempt a kill cut.
PLAN_RETRY_S = min(min(DEFAULT_RETRY_S.values()), 900)


def _kill_between(run: CrashRun, start: float, end: float) -> float | None:
    return next((at for at, _ in run.kills if start <= at <= end), None)


def problems(run: CrashRun) -> list[str]:
    """Everything that is wrong after the run; empty when the box lost and doubled nothing."""
    out: list[str] = []
    db = sqlite3.connect(f"file:{run.data / 'dialbox.sqlite3'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            out.append("the store fails its integrity check")
        out += [f"foreign key broken: {tuple(r)}" for r in db.execute("PRAGMA foreign_key_check")]
        attempts = [dict(r) for r in db.execute(
            "SELECT a.*, c.max_attempts FROM attempts a JOIN campaigns c ON c.id=a.campaign_id "
            "ORDER BY a.created_at")]
        recs = [dict(r) for r in db.execute("SELECT * FROM recordings")]
    finally:
        db.close()
    out += _attempt_problems(run, attempts)
    out += _dial_problems(run, attempts)
    out += _recording_problems(run, recs)
    return out


def _attempt_problems(run: CrashRun, attempts: list[dict]) -> list[str]:
    out = []
    per_account: dict[int, int] = {}
    for a in attempts:
        per_account[a["account_pk"]] = per_account.get(a["account_pk"], 0) + 1
        if a["state"] == "dialing" or a["ended_at"] is None:
            out.append(f"attempt {a['call_id']} has no outcome after the clean stop")
        elif a["state"] == "interrupted" and a["ended_at"] < run.stopped_at and \
                _kill_between(run, a["created_at"], a["ended_at"]) is None:
            out.append(f"attempt {a['call_id']} was closed as interrupted with no kill during it")
    for a in attempts:
        if per_account[a["account_pk"]] > a["max_attempts"]:
            out.append(f"account {a['account_pk']}: {per_account[a['account_pk']]} attempts, "
                       f"the plan allows {a['max_attempts']}")
    return out


REFUSED = ("channel_unavailable", "congestion")  # the network refused the SETUP: no debtor rang


def _dial_problems(run: CrashRun, attempts: list[dict]) -> list[str]:
    """Each dial the modems and the network saw is one attempt of the store, with the debtor's
    outcome; no number was dialed more often than the plan allows."""
    out = []
    by_number: dict[str, list[dict]] = {}
    for a in attempts:
        by_number.setdefault(a["number"], []).append(a)
    used: set[str] = set()
    max_attempts = max((a["max_attempts"] for a in attempts), default=0)
    dials: dict[str, int] = {}
    last: dict[str, tuple[float, dict]] = {}  # number -> its last dial that reached the debtor
    for call in sorted(run.calls, key=lambda c: c["at"]):
        if call["fate"] not in REFUSED:
            dials[call["number"]] = dials.get(call["number"], 0) + 1
            if dials[call["number"]] == max_attempts + 1:
                out.append(f"{call['number']}: dialed more than the plan's {max_attempts} times "
                           "at the modems and the network")
            before = last.get(call["number"])
            if before is not None and call["at"] - before[0] < PLAN_RETRY_S and \
                    before[1]["state"] != "line_fault":
                out.append(f"{call['number']}: dialed again {call['at'] - before[0]:.1f} s after "
                           f"its last dial ({before[1]['call_id']}, {before[1]['state']}/"
                           f"{before[1]['outcome']}); the plan waits at least {PLAN_RETRY_S} s")
        match = next((a for a in by_number.get(call["number"], [])
                      if a["call_id"] not in used and a["created_at"] <= call["at"] + 0.05
                      and (a["ended_at"] is None or call["at"] <= a["ended_at"] + 0.05)), None)
        if match is None:
            out.append(f"{call['number']}: dialed at {call['at']:.3f} on {call['modem']} with "
                       "no attempt in the store")
            continue
        used.add(match["call_id"])
        if call["fate"] not in REFUSED:
            last[call["number"]] = (call["at"], match)
        if call["ended_at"] is None or call["ended_by"] == "box":
            continue  # the box hung up (ring time-out, abandon, its stop): its own outcome
        cut = _kill_between(run, call["at"], call["ended_at"] + RECORD_GRACE_S)
        if call["ended_by"] in ("link", "restart"):
            if cut is None:  # the network lost the box's D-channel, or was RESTARTed, in life
                out.append(f"{match['call_id']}: the network cleared it ({call['ended_by']}) "
                           f"with no kill during it")
            continue
        if cut is not None or call["ended_at"] + RECORD_GRACE_S >= run.stopped_at:
            continue  # the outcome came while the box was down or about to die
        want = FATE_OUTCOME.get(call["fate"])
        if call["fate"] in REFUSED:
            if match["state"] == "done" and match["outcome"] in DEBTOR_OUTCOMES:
                out.append(f"{match['call_id']}: the network refused the channel "
                           f"({call['cause']}), the store says the debtor {match['outcome']}")
        elif match["state"] != "done" or (want and match["outcome"] not in want):
            out.append(f"{match['call_id']}: the debtor's {call['fate']} was recorded as "
                       f"{match['state']}/{match['outcome']} ({match['reason']})")
    for a in attempts:
        # An attempt the network saw must be one of the modems' dials (not dialed twice, not
        # invented); attempts that never left the box (interrupted first) may have none.
        if a["call_id"] not in used and a["state"] == "done" and \
                a["outcome"] in DEBTOR_OUTCOMES:
            out.append(f"{a['call_id']}: {a['outcome']} in the store, never dialed at a modem "
                       "or the network")
    return out


def _recording_problems(run: CrashRun, recs: list[dict]) -> list[str]:
    import av
    out = []
    for r in recs:
        path = run.data / r["path"]
        if r["state"] not in ("done", "interrupted"):
            out.append(f"recording of {r['call_id']} left {r['state']}: {r['error']}")
            continue
        if not path.is_file():
            cut = _kill_between(run, r["started_at"], r["finished_at"] or float("inf"))
            if r["state"] == "interrupted" and cut is not None and \
                    cut - r["started_at"] <= RECORDING_LOSS_S and "nothing was written" in \
                    (r["error"] or ""):
                run.cut_recordings.append((r["call_id"], cut - r["started_at"], 0.0))
                continue  # killed before its writer opened it, and the store says so
            out.append(f"recording of {r['call_id']} is missing ({r['path']}; a kill "
                       f"{'none' if cut is None else round(cut - r['started_at'], 2)} s in)")
            continue
        try:
            with av.open(str(path)) as f:
                samples = sum(fr.samples for fr in f.decode(audio=0))
                rate = f.streams.audio[0].rate
        except Exception as exc:  # noqa: BLE001 - any decoder error is the finding
            if r["state"] == "done" or r["sha256"]:
                out.append(f"recording of {r['call_id']} does not play: {exc}")
                continue
            samples, rate = 0, 8000  # the store says it holds nothing: no audio page was written
        played = samples / rate
        r["played"] = played
        cut = _kill_between(run, r["started_at"], r["finished_at"] or float("inf"))
        if r["state"] == "done" and cut is None and \
                abs(played - (r["duration_s"] or 0.0)) > 0.5:
            out.append(f"recording of {r['call_id']} plays {played:.2f} s, the store says "
                       f"{r['duration_s']} s")
        if cut is not None:
            wanted = cut - r["started_at"] - RECORDING_LOSS_S
            run.cut_recordings.append((r["call_id"], cut - r["started_at"], played))
            if played < wanted:
                out.append(f"recording of {r['call_id']} cut by a kill {cut - r['started_at']:.1f}"
                           f" s in plays only {played:.2f} s")
    return out


def summary(run: CrashRun) -> dict:
    db = sqlite3.connect(f"file:{run.data / 'dialbox.sqlite3'}?mode=ro", uri=True)
    try:
        states = dict(db.execute("SELECT state, COUNT(*) FROM attempts GROUP BY state"))
        recs = dict(db.execute("SELECT state, COUNT(*) FROM recordings GROUP BY state"))
    finally:
        db.close()
    e1 = [c for c in run.calls if "timeslot" in c]
    ended: dict[str, int] = {}
    for c in e1:
        ended[str(c["ended_by"])] = ended.get(str(c["ended_by"]), 0) + 1
    return {"kills": len(run.kills), "boots": run.boots, "modem_dials": len(run.calls) - len(e1),
            "network_dials": len(e1), "network_ended_by": ended,
            "attempts": states, "recordings": recs,
            "cut_recordings_s_in_played": [(round(a, 2), round(b, 2))
                                           for _c, a, b in run.cut_recordings]}


def main(argv: list[str] | None = None) -> int:
    import tempfile
    p = argparse.ArgumentParser(description="SIGKILL the box at random instants; check the store")
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = p.parse_args(argv)
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="dialbox-crash-"))
    tmp.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    run = asyncio.run(crash_run(tmp, kills=args.kills, seed=args.seed))
    found = problems(run)
    print(json.dumps(dict(summary(run), kills_by=[how for _at, how in run.kills], seconds=round(time.monotonic() - t0),
                          problems=found), ensure_ascii=False, indent=1))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
