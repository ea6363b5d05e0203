"""Backups: consistent while the box dials (SQLite online backup), recordings referenced by
checksum, a restore that refuses a damaged backup or a running box and keeps the old store."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import zipfile
from datetime import datetime

import pytest

from controller import recordings
from dialbox import backup, config
from dialbox.appliance import Settings
from firmware.errors import UserError
from tests.gsmsim import until
from tests.runbox import admin_pages, cli, free_port, running


def _attempts(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    finally:
        conn.close()


async def test_backup_while_dialing_then_restore_refused_while_running(tmp_path, capsys):
    data = tmp_path / "data"
    rec = data / "recordings" / "2026" / "call-1.ogg"
    rec.parent.mkdir(parents=True)
    rec.write_bytes(b"OggS" + bytes(range(256)) * 40)
    cfg = config.ApplianceConfig(data=data, listen=[f"127.0.0.1:{free_port()}"],
                                 simulate=True, backup_keep=2)
    settings = Settings(simulate=True, data=data, operators=4, compliance="none",
                        time_scale=20, seed=3)
    async with running(cfg, settings) as (app, _):
        assert "nightly backup" in {i.what for i in app.runtime.boot.items}
        # a finished recording, indexed as the recorder indexes one (path, size, checksum)
        recordings.started(app.store, data=data, call_id="rec-1", line="gsm0", path=rec,
                           started_at=app.clock.wall(), channels=2)
        recordings.finished(app.store, call_id="rec-1", duration_s=1.0, size=rec.stat().st_size,
                            sha256=backup._sha256(rec), now=app.clock.wall())
        await until(lambda: _attempts(data / "dialbox.sqlite3") >= 5, timeout=60)
        # while the dialer writes, several backups in a row: each a consistent snapshot
        files = []
        for i in range(3):
            dest = tmp_path / f"b{i}.dbx"
            code = await asyncio.to_thread(cli, ["backup", str(dest), "--data", str(data)])
            assert code == 0
            files.append(dest)
        out = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
        assert all(o["recordings"] == 1 for o in out)
        counts = []
        for f in files:
            manifest = backup.verify(f)
            with zipfile.ZipFile(f) as z:
                assert sorted(z.namelist()) == ["dialbox.sqlite3", "manifest.json"]
                z.extract("dialbox.sqlite3", tmp_path / f.stem)
            counts.append(_attempts(tmp_path / f.stem / "dialbox.sqlite3"))
            assert manifest["recordings"] == [{
                "path": "recordings/2026/call-1.ogg", "bytes": rec.stat().st_size,
                "sha256": backup._sha256(rec)}]
        assert counts == sorted(counts) and counts[0] >= 5
        # the nightly job does the same into the data directory and keeps the newest two
        nightly = app.runtime.extras["backup"]
        for _ in range(3):
            last = await nightly.once()
            assert last["ok"], last
            await asyncio.sleep(1.05)  # names carry the second
        kept = sorted(cfg.backup_path.glob("dialbox-*.dbx"))
        assert len(kept) == 2 and backup.verify(kept[-1])["schema_version"] >= 1
        # /settings says when it runs, how many it keeps and how the last one went; a failed
        # one says so, its reason (a path in it) left to the log and the console
        ru, en = await admin_pages(app, "settings?lang=ru", "settings?lang=en")
        (tmp_path / "not-a-folder").write_text("x")
        cfg.backup_dir = str(tmp_path / "not-a-folder")
        assert not (await nightly.once())["ok"]
        ru_failed, = await admin_pages(app, "settings?lang=ru")
        shown = [p.split('id="nightly-backup">')[1].split("</dd>")[0]
                 for p in (ru, en, ru_failed)]
        assert shown[0].startswith("каждую ночь в 03:00, хранятся последние 2; последняя, ")
        assert shown[0].endswith(": сделана")
        assert shown[1].startswith("every night at 03:00, the last 2 kept; the last one, ")
        assert shown[1].endswith(": made")
        assert 'не удалась (причина в журнале)' in shown[2]
        for page in (ru, en, ru_failed):
            assert str(tmp_path) not in page
        # a running box's store is never overwritten
        before = (data / "dialbox.sqlite3").stat().st_ino
        with pytest.raises(UserError, match="running on this data directory"):
            backup.restore(files[0], data)
        assert (data / "dialbox.sqlite3").stat().st_ino == before
        assert await asyncio.to_thread(cli, ["restore", str(files[0]), "--data",
                                              str(data)]) == 1
    # stopped: the restore goes through, keeps the old store, and checks the recordings
    rec.write_bytes(b"changed")
    result = backup.restore(files[0], data)
    assert result["changed_recordings"] == ["recordings/2026/call-1.ogg"]
    assert result["kept"] and _attempts(result["kept"]) >= counts[-1]
    assert _attempts(data / "dialbox.sqlite3") == counts[0]
    conn = sqlite3.connect(data / "dialbox.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def _small_backup(tmp_path):
    from controller.store import Store
    store = Store(tmp_path / "d" / "dialbox.sqlite3")
    store.campaign("c", create=True)
    store.close()
    dest = tmp_path / "b.dbx"
    backup.make(tmp_path / "d" / "dialbox.sqlite3", dest)
    return dest


def test_a_damaged_backup_is_refused_and_nothing_is_touched(tmp_path):
    dest = _small_backup(tmp_path)
    raw = bytearray(dest.read_bytes())
    with zipfile.ZipFile(dest) as z:
        info = z.getinfo("dialbox.sqlite3")
    raw[info.header_offset + 60] ^= 0xFF  # one flipped byte inside the database's data
    bad = tmp_path / "bad.dbx"
    bad.write_bytes(bytes(raw))
    target = tmp_path / "target"
    target.mkdir()
    (target / "dialbox.sqlite3").write_bytes(b"the shop's store")
    with pytest.raises(UserError, match="damaged|checksum|not a readable"):
        backup.restore(bad, target)
    assert (target / "dialbox.sqlite3").read_bytes() == b"the shop's store"
    assert sorted(p.name for p in target.iterdir()) == ["dialbox.sqlite3"]
    (tmp_path / "junk.dbx").write_bytes(b"PK\x03\x04 nothing")
    with pytest.raises(UserError, match="not a readable backup"):
        backup.verify(tmp_path / "junk.dbx")


def test_a_backup_whose_database_fails_its_checksum_is_refused(tmp_path):
    dest = _small_backup(tmp_path)
    with zipfile.ZipFile(dest) as z:
        db, manifest = z.read("dialbox.sqlite3"), json.loads(z.read("manifest.json"))
    forged = tmp_path / "forged.dbx"
    with zipfile.ZipFile(forged, "w") as z:  # CRCs fine, content not what was backed up
        z.writestr("dialbox.sqlite3", db[:-4096] + bytes(4096))
        z.writestr("manifest.json", json.dumps(manifest))
    with pytest.raises(UserError, match="checksum"):
        backup.verify(forged)


def test_nightly_schedule_and_rotation(tmp_path):
    assert backup.next_run(datetime(2026, 3, 1, 2, 59), "03:00") == datetime(2026, 3, 1, 3, 0)
    assert backup.next_run(datetime(2026, 3, 1, 3, 0), "03:00") == datetime(2026, 3, 2, 3, 0)
    assert backup.next_run(datetime(2026, 12, 31, 23, 30), "00:15") == datetime(2027, 1, 1,
                                                                                  0, 15)
    for i in range(5):
        (tmp_path / f"dialbox-2026010{i}-030000.dbx").write_bytes(b"x")
    gone = backup.rotate(tmp_path, 2)
    assert len(gone) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dialbox-20260103-030000.dbx",
                                                          "dialbox-20260104-030000.dbx"]


def test_recordings_indexed_in_the_store_are_referenced_by_their_stored_checksum(tmp_path):
    from controller.store import Store
    data = tmp_path / "d"
    store = Store(data / "dialbox.sqlite3")
    for call_id, sha, size in (("c1", "aa11", 100), ("c2", None, 0), ("c3", "cc33", 300)):
        recordings.started(store, data=data, call_id=call_id, line="gsm0",
                           path=data / "recordings" / f"{call_id}.ogg", started_at=1.0,
                           channels=2)
        recordings.finished(store, call_id=call_id, duration_s=1.0, sha256=sha, size=size,
                            now=2.0)
    store.db.execute("UPDATE recordings SET state='purged' WHERE call_id='c3'")
    store.close()
    manifest = backup.make(data / "dialbox.sqlite3", tmp_path / "b.dbx")
    # from the index, not by reading the audio again (the files are not even here)
    assert manifest["recordings"] == [{"path": "recordings/c1.ogg", "bytes": 100,
                                       "sha256": "aa11"}]
    missing, changed = backup.check_recordings(manifest, data)
    assert missing == ["recordings/c1.ogg"] and changed == []


def test_the_nightly_backup_follows_a_time_zone_change_in_virtual_time(tmp_path):
    """Waiting for 03:00 in UTC, the shop moves to Vladivostok (UTC+10) at 01:00 UTC: the
    backup runs at 03:00 in Vladivostok (17:00 UTC), not at 03:00 UTC (13:00 there)."""
    import os
    import time
    from datetime import timezone
    from types import SimpleNamespace

    from controller.store import Store
    from firmware.clock import run_virtual

    was = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    data = tmp_path / "d"
    store = Store(data / "dialbox.sqlite3")
    cfg = SimpleNamespace(backup_at="03:00", backup_path=tmp_path / "backups", backup_keep=5,
                          data=data)
    start = datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc).timestamp()

    async def main(clock):
        nightly = backup.Nightly(SimpleNamespace(clock=clock, store=store), cfg)
        task = asyncio.get_running_loop().create_task(nightly.run())
        await clock.sleep(3600)  # 01:00 UTC
        assert nightly.due == start + 3 * 3600 and nightly.last is None
        os.environ["TZ"] = "Asia/Vladivostok"
        time.tzset()
        nightly.replan()
        await clock.sleep(3 * 3600)  # 04:00 UTC: past 03:00 UTC, nothing was backed up
        assert nightly.last is None and nightly.due == start + 17 * 3600
        await clock.sleep(14 * 3600)  # 18:00 UTC
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return nightly.last

    try:
        last = run_virtual(main, wall0=start)
    finally:
        store.close()
        if was is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = was
        time.tzset()
    assert last["ok"] and last["at"] == start + 17 * 3600
    assert [p.name for p in cfg.backup_path.iterdir()] == ["dialbox-20260302-030000.dbx"]
