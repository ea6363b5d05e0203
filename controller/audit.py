"""The audit log: who changed what, when, from where (before -> after). Append-only in the store.

Every change to a campaign, list, profile, user, setting, DNC entry, refusal or complaint, every
supervisor action on a live call and every recording played goes through :func:`record`. The
table refuses UPDATE and DELETE (triggers), so an entry once written stays as written.
"""
from __future__ import annotations

import json
from typing import Any

# What changed: a short machine name; the web admin translates it for people.
OBJECTS = ("campaign", "calllist", "profile", "user", "setting", "dnc", "refusal", "complaint",
           "recording", "call", "line", "session", "api_token", "console", "backup")


def record(store, *, who: str, action: str, obj: str, key: str = "", before: Any = None,
           after: Any = None, source: str = "", at: float | None = None) -> int:
    """Append one entry; returns its id. ``source`` is where from (an address, ``console``, ``cli``)."""
    if obj not in OBJECTS:
        raise ValueError(f"audit: unknown object kind {obj!r}")
    now = store.clock.wall() if at is None else at
    cur = store.db.execute(
        "INSERT INTO audit_log (at, who, source, object, key, action, before, after) "
        "VALUES (?,?,?,?,?,?,?,?)",
        (now, who, source, obj, str(key), action, _dump(before), _dump(after)))
    return int(cur.lastrowid)


def entries(store, *, obj: str | None = None, key: str | None = None, who: str | None = None,
            text: str | None = None, since: float | None = None, until: float | None = None,
            limit: int = 500) -> list[dict]:
    """The newest entries first, filtered; ``text`` matches the action, key, before or after."""
    where, args = [], []
    for col, val in (("object", obj), ("key", key), ("who", who)):
        if val is not None:
            where.append(f"{col}=?")
            args.append(val)
    if since is not None:
        where.append("at >= ?")
        args.append(since)
    if until is not None:
        where.append("at < ?")
        args.append(until)
    if text:
        where.append("(action LIKE ? OR key LIKE ? OR before LIKE ? OR after LIKE ?)")
        args += [f"%{text}%"] * 4
    sql = ("SELECT id, at, who, source, object, key, action, before, after FROM audit_log"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
    rows = store.db.execute(sql, (*args, limit)).fetchall()
    return [dict(r, before=_load(r["before"]), after=_load(r["after"])) for r in rows]


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True,
                                                 default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
