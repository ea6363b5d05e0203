"""Backups of the store: SQLite's online backup API (consistent while the box dials), recordings
referenced by checksum (not copied), and a restore that refuses a bad backup or a running box.

A backup file is a zip with ``dialbox.sqlite3`` and ``manifest.json`` (format, time, schema
version, the database's SHA-256, and every recording's path, size and SHA-256).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import tempfile
import zipfile
import zlib
from datetime import datetime, timedelta
from pathlib import Path, PurePath

import structlog

from firmware.clock import Clock
from firmware.errors import N_, Msg, UserError

log = structlog.get_logger(__name__)

FORMAT = "dialbox-backup/1"
DB_NAME = "dialbox.sqlite3"
MANIFEST = "manifest.json"
RECORDINGS_DIR = "recordings"
SUFFIX = ".dbx"


def make(db: Path, dest: Path, *, data: Path | None = None, at: float | None = None) -> dict:
    """Back up the store at ``db`` into ``dest``; returns the manifest. Blocking: run it in a
    thread when the event loop is live."""
    db, dest = Path(db), Path(dest)
    if not db.exists():
        raise UserError(f"{db}: no database to back up")
    data = Path(data) if data else db.parent
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".backup-") as tmp:
        copy = Path(tmp) / DB_NAME
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            out = sqlite3.connect(copy)
            try:
                # One step: one read transaction, a consistent snapshot; in WAL mode the box's
                # writers go on meanwhile (a stepped copy would restart on every write).
                src.backup(out, pages=-1)
                out.execute("PRAGMA journal_mode=DELETE")
                version = out.execute("PRAGMA user_version").fetchone()[0]
                _integrity(out, "the copy")
                indexed = _indexed_recordings(out)
            finally:
                out.close()
        finally:
            src.close()
        manifest = {"format": FORMAT, "created_at": Clock().wall() if at is None else at,
                    "schema_version": version,
                    "db_sha256": _sha256(copy), "db_bytes": copy.stat().st_size,
                    "recordings": indexed if indexed is not None else recordings(data)}
        part = Path(tmp) / "backup.zip"
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.write(copy, DB_NAME)
            z.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        _fsync(part)
        os.replace(part, dest)
        _fsync_dir(dest.parent)
    log.info("backup_written", file=str(dest), bytes=dest.stat().st_size,
             recordings=len(manifest["recordings"]))
    return manifest


def verify(path: Path) -> dict:
    """The manifest of a sound backup, or UserError saying what is wrong with it."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            if bad is not None:
                raise UserError(f"{path}: damaged backup ({bad} fails its CRC)")
            names = set(z.namelist())
            if MANIFEST not in names or DB_NAME not in names:
                raise UserError(f"{path}: not a dialbox backup (no {MANIFEST} or {DB_NAME})")
            manifest = json.loads(z.read(MANIFEST))
            if manifest.get("format") != FORMAT:
                raise UserError(f"{path}: backup format {manifest.get('format')!r}, this "
                                f"dialbox reads {FORMAT}")
            with tempfile.TemporaryDirectory(prefix=".verify-", dir=path.parent) as tmp:
                db = Path(z.extract(DB_NAME, tmp))
                if _sha256(db) != manifest.get("db_sha256"):
                    raise UserError(f"{path}: the database does not match its checksum")
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    _integrity(conn, str(path))
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                finally:
                    conn.close()
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, KeyError,
            sqlite3.DatabaseError) as exc:
        raise UserError(f"{path}: not a readable backup ({exc})") from None
    from controller.store import MIGRATIONS
    if version > len(MIGRATIONS):
        raise UserError(f"{path}: schema v{version} is newer than this dialbox "
                        f"(v{len(MIGRATIONS)}); upgrade dialbox first")
    return manifest


def restore(path: Path, data: Path, *, clock: Clock | None = None) -> dict:
    """Put a verified backup in place of the store in ``data`` (the box must be stopped);
    the old store is kept beside it. Returns what happened, recordings checked included."""
    from dialbox.boot import DataLock
    path, data = Path(path), Path(data)
    manifest = verify(path)
    lock = DataLock(data)
    try:
        lock.acquire()
    except UserError:
        raise UserError("{data}: the box is running on this data directory; stop it "
                        "(systemctl stop dialbox) before restoring", data=data) from None
    try:
        db = data / DB_NAME
        kept = None
        stamp = datetime.fromtimestamp((clock or Clock()).wall()).strftime("%Y%m%d-%H%M%S")
        with zipfile.ZipFile(path) as z, tempfile.TemporaryDirectory(dir=data,
                                                                     prefix=".restore-") as tmp:
            new = Path(z.extract(DB_NAME, tmp))
            _fsync(new)
            if db.exists():
                kept = data / f"{DB_NAME}.before-restore-{stamp}"
                _checkpoint(db)
                os.replace(db, kept)
            for side in ("-wal", "-shm"):
                Path(str(db) + side).unlink(missing_ok=True)
            os.replace(new, db)
            _fsync_dir(data)
    finally:
        lock.release()
    missing, changed = check_recordings(manifest, data)
    log.info("backup_restored", file=str(path), kept=str(kept) if kept else None,
             missing_recordings=len(missing), changed_recordings=len(changed))
    return {"restored": str(db), "kept": str(kept) if kept else None,
            "schema_version": manifest["schema_version"], "missing_recordings": missing,
            "changed_recordings": changed}


def recordings(data: Path) -> list[dict]:
    """Every recording file under ``DATA/recordings`` by path, size and SHA-256."""
    root = Path(data) / RECORDINGS_DIR
    if not root.is_dir():
        return []
    return [{"path": str(p.relative_to(data)), "bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(root.rglob("*")) if p.is_file()]


def _indexed_recordings(conn: sqlite3.Connection) -> list[dict] | None:
    """The recordings the store indexes with their checksums (None when it has no index):
    taken from the database, so a nightly backup does not read years of audio again."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='recordings'"
                        ).fetchone():
        return None
    rows = conn.execute("SELECT path, bytes, sha256 FROM recordings WHERE sha256 IS NOT NULL "
                        "AND state != 'purged' ORDER BY path").fetchall()
    return [{"path": p, "bytes": b, "sha256": h} for p, b, h in rows]


def check_recordings(manifest: dict, data: Path) -> tuple[list[str], list[str]]:
    """Recordings the backup references that are gone, or whose content changed."""
    missing, changed = [], []
    for rec in manifest.get("recordings", []):
        p = Path(data) / rec["path"]
        if not p.is_file():
            missing.append(rec["path"])
        elif p.stat().st_size != rec["bytes"] or _sha256(p) != rec["sha256"]:
            changed.append(rec["path"])
    return missing, changed


def next_run(now: datetime, at: str) -> datetime:
    """The next local time ``at`` (HH:MM) after ``now``."""
    hh, mm = (int(x) for x in at.split(":"))
    run = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return run if run > now else run + timedelta(days=1)


def rotate(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` nightly backups; returns the deleted ones."""
    files = sorted(Path(folder).glob(f"dialbox-*{SUFFIX}"))
    gone = files[:-keep] if keep > 0 else files
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


class Nightly:
    """Runtime part: a backup into the data directory every night at ``backup.at``."""

    def __init__(self, app, cfg) -> None:
        self.app = app
        self.cfg = cfg
        self.last: dict | None = None  # {"at", "file", "bytes", "ok", "error"}
        self._replan = asyncio.Event()
        self.due: float | None = None  # wall time of the next backup

    def replan(self) -> None:
        """The local time changed meaning (the shop's time zone was changed): the wait for
        ``backup.at`` is computed again, in the new zone."""
        self._replan.set()

    async def run(self) -> None:
        clock = self.app.clock
        while True:
            self._replan.clear()
            now = datetime.fromtimestamp(clock.wall())
            due = next_run(now, self.cfg.backup_at)
            self.due = clock.wall() + (due - now).total_seconds()
            # a time of day: wall seconds, not scaled
            sleep = asyncio.ensure_future(clock.sleep((due - now).total_seconds() * clock.scale))
            replan = asyncio.ensure_future(self._replan.wait())
            try:
                done, _ = await asyncio.wait((sleep, replan), return_when=asyncio.FIRST_COMPLETED)
            finally:
                replan.cancel()
                sleep.cancel()
            if sleep not in done:  # the zone changed before the time came
                log.info("backup_rescheduled")
                continue
            await self.once()

    async def once(self) -> dict:
        folder = self.cfg.backup_path
        at = self.app.clock.wall()
        dest = folder / f"dialbox-{datetime.fromtimestamp(at).strftime('%Y%m%d-%H%M%S')}{SUFFIX}"
        try:
            await asyncio.to_thread(make, self.app.store.path, dest, data=self.cfg.data, at=at)
            await asyncio.to_thread(rotate, folder, self.cfg.backup_keep)
            self.last = {"at": at, "file": str(dest), "bytes": dest.stat().st_size,
                         "ok": True, "error": ""}
        except (UserError, OSError, sqlite3.Error) as exc:
            log.error("backup_failed", error=str(exc))
            self.last = {"at": at, "file": str(dest), "bytes": 0, "ok": False,
                         "error": str(exc)}
        return self.last


async def start(app, runtime, report) -> None:
    cfg = runtime.config
    if not cfg.backup_nightly:
        report.add(N_("nightly backup"), True, N_("off (backup.nightly: false)"))
        return
    nightly = runtime.extras["backup"] = Nightly(app, cfg)
    runtime.supervisor.run(N_("nightly backup"), nightly.run)
    # the folder in full on the console and in the log (field service looks there); its name
    # only on pages
    report.add(N_("nightly backup"), True, Msg("at {at} into {folder}, keeping {keep}",
                                               at=cfg.backup_at,
                                               folder=PurePath(cfg.backup_path),
                                               keep=cfg.backup_keep))


# --- internals ----------------------------------------------------------------------------------
def _integrity(conn: sqlite3.Connection, what: str) -> None:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    if rows != ["ok"]:
        raise UserError(f"{what}: the database fails its integrity check: {'; '.join(rows[:3])}")


def _checkpoint(db: Path) -> None:
    """Fold the WAL into the old database before it is set aside, so it stays whole."""
    try:
        conn = sqlite3.connect(db)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("checkpoint_before_restore_failed", error=str(exc))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    _fsync(path)
