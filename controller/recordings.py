"""The recordings index: which file holds which conversation, its checksum, and how long it is kept.

A row is written when a recording starts (so a crash leaves the file linked to its attempt) and
completed when it ends: duration, size and SHA-256 of the finished file. Paths are kept relative to
the data directory. Retention (3 years by default; the compliance profile may say otherwise) is
applied by a nightly purge that deletes expired files, keeps their rows marked purged, and logs
what it removed.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import structlog

from firmware.errors import UserError
from firmware.media.recorder import file_sha256

log = structlog.get_logger(__name__)

DEFAULT_RETENTION_DAYS = 3 * 365 + 1  # three years, a leap day included
DAY_S = 86400.0


def _rel(data: Path, path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(data).resolve()))
    except ValueError:
        return str(Path(path).resolve())


def started(store, *, data: Path, call_id: str, line: str, path: Path, started_at: float,
            channels: int, operator: str | None = None) -> None:
    with store.tx():
        store.db.execute(
            "INSERT INTO recordings (call_id, line, operator, path, started_at, channels, state) "
            "VALUES (?,?,?,?,?,?, 'recording') ON CONFLICT(call_id) DO NOTHING",
            (call_id, line, operator, _rel(data, path), started_at, channels))


def set_operator(store, call_id: str, operator: str) -> None:
    with store.tx():
        store.db.execute("UPDATE recordings SET operator=? WHERE call_id=?", (operator, call_id))


def finished(store, *, call_id: str, duration_s: float, sha256: str | None, size: int,
             error: str = "", now: float) -> None:
    with store.tx():
        store.db.execute(
            "UPDATE recordings SET duration_s=?, sha256=?, bytes=?, error=?, finished_at=?, "
            "state=? WHERE call_id=?",
            (duration_s, sha256, size, error or None, now, "done" if sha256 else "failed",
             call_id))


def recover(store, data: Path, probe, now: float) -> int:
    """After a crash: recordings left open are measured and checksummed as they stand."""
    found = measure_open(data, open_recordings(store), probe)
    mark_interrupted(store, found, now)
    return len(found)


def open_recordings(store) -> list[tuple[str, str]]:
    """(call id, path) of the recordings a crash left open."""
    return [(r["call_id"], r["path"]) for r in store.db.execute(
        "SELECT call_id, path FROM recordings WHERE state='recording'")]


def measure_open(data: Path, rows: list[tuple[str, str]], probe) -> list[tuple]:
    """Measure and checksum them as they stand (files only: any thread)."""
    out = []
    for call_id, rel in rows:
        path = Path(data) / rel
        duration, sha, size, error = 0.0, None, 0, "interrupted: the box stopped mid-call"
        if not path.exists():  # the power went before the writer opened it
            error = "interrupted: nothing was written before the box stopped"
        else:
            size = path.stat().st_size
            try:
                duration = round(probe(path), 3)
                sha = file_sha256(path)
            except Exception:  # noqa: BLE001 - an empty or headerless file: nothing to play
                error = "interrupted: nothing was written before the box stopped"
        out.append((call_id, duration, sha, size, error))
    return out


def mark_interrupted(store, found: list[tuple], now: float) -> None:
    with store.tx():
        store.db.executemany(
            "UPDATE recordings SET duration_s=?, sha256=?, bytes=?, error=?, finished_at=?, "
            "state='interrupted' WHERE call_id=?",
            [(duration, sha, size, error, now, call_id)
             for call_id, duration, sha, size, error in found])
    if found:
        log.warning("recordings_recovered_after_restart", count=len(found))



def listing(store, data: Path, call_id: str | None = None) -> list[dict]:
    """Recordings not purged, oldest first, as ``dialbox recordings list`` prints them."""
    sql = ("SELECT call_id, line, operator, path, started_at, duration_s, channels, sha256, state "
           "FROM recordings WHERE state != 'purged'")
    args: tuple = ()
    if call_id is not None:
        sql += " AND call_id=?"
        args = (call_id,)
    out = []
    for r in store.db.execute(sql + " ORDER BY started_at, id", args):
        out.append({"call_id": r["call_id"], "path": str((Path(data) / r["path"]).resolve()),
                    "duration_s": r["duration_s"], "channels": r["channels"],
                    "started_at": r["started_at"], "sha256": r["sha256"], "line": r["line"],
                    "operator": r["operator"], "state": r["state"]})
    return out


def export(store, data: Path, call_id: str, dest: Path) -> dict:
    """Copy one recording out, verified against its stored checksum (UserError if it differs)."""
    rows = listing(store, data, call_id)
    if not rows:
        raise UserError("no recording of call {call_id}; `dialbox recordings list` shows the "
                        "calls recorded", call_id=call_id)
    rec = rows[0]
    src = Path(rec["path"])
    if rec["sha256"] is None:
        raise UserError("the recording of call {call_id} has no checksum ({state}): it was "
                        "not finished; it cannot be exported as verified", call_id=call_id,
                        state=rec["state"])
    if not src.exists():
        raise UserError("the recording file of call {call_id} is missing from the data "
                        "directory; restore it from the backup", call_id=call_id)
    if file_sha256(src) != rec["sha256"]:
        raise UserError("the recording of call {call_id} does not match its checksum: the "
                        "file was changed or damaged; restore it from the backup",
                        call_id=call_id)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / src.name
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    if file_sha256(tmp) != rec["sha256"]:
        tmp.unlink(missing_ok=True)
        raise UserError("{file}: the copy does not match the checksum (disk trouble?); "
                        "nothing was written", file=dest)
    tmp.replace(dest)
    return dict(rec, exported_to=str(dest))


@dataclass
class PurgeResult:
    removed: list[str]
    missing: list[str]
    freed_bytes: int


def purge(store, data: Path, *, now: float, retention_days: float) -> PurgeResult:
    """Delete recordings older than the retention; their rows stay, marked purged."""
    result = remove_files(data, expired(store, now=now, retention_days=retention_days))
    mark_purged(store, result, now=now, retention_days=retention_days)
    return result


def expired(store, *, now: float, retention_days: float) -> list[tuple[str, str]]:
    """(call id, path) of the recordings the retention expired."""
    return [(r["call_id"], r["path"]) for r in store.db.execute(
        "SELECT call_id, path FROM recordings WHERE state != 'purged' AND state != "
        "'recording' AND started_at < ? ORDER BY started_at", (now - retention_days * DAY_S,))]


def remove_files(data: Path, rows: list[tuple[str, str]]) -> PurgeResult:
    """Delete their files (files only: any thread)."""
    removed, missing, freed = [], [], 0
    for call_id, rel in rows:
        path = Path(data) / rel
        try:
            size = path.stat().st_size
            path.unlink()
            freed += size
            removed.append(call_id)
        except FileNotFoundError:
            missing.append(call_id)
    return PurgeResult(removed, missing, freed)


def mark_purged(store, result: PurgeResult, *, now: float, retention_days: float) -> None:
    with store.tx():
        store.db.executemany("UPDATE recordings SET state='purged', purged_at=? WHERE call_id=?",
                             [(now, c) for c in result.removed + result.missing])
    if result.removed or result.missing:
        log.info("recordings_purged", removed=len(result.removed), missing=len(result.missing),
                 freed_bytes=result.freed_bytes, retention_days=retention_days,
                 call_ids=result.removed + result.missing)
