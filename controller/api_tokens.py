"""Tokens for integrations (the shop's CRM): issued per integration, scoped, revocable.

Only a hash of a token is stored; the token itself is shown once, when it is issued.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets

from controller import audit
from firmware.errors import UserError

SCOPES = {
    "read_results": "read outcomes, promises and campaigns",
    "import_leads": "push debts into a campaign",
    "import_payments": "push payments received",
    "control_campaigns": "start, pause and stop campaigns",
}
PREFIX = "dbx_"


def issue(store, name: str, scopes: list[str], *, by: str, source: str = "") -> str:
    """A new token for the integration ``name``; returned once, never stored in clear."""
    if not re.fullmatch(r"[\w .@-]{2,64}", name):
        raise UserError(f"integration name {name!r}: use 2-64 letters, digits, spaces, _ . @ -")
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise UserError(f"scopes {', '.join(bad) or '(none)'}: choose from {', '.join(SCOPES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    with store.tx():
        if store.db.execute("SELECT 1 FROM api_tokens WHERE name=?", (name,)).fetchone():
            raise UserError(f"integration {name!r} already has a token; revoke it first")
        store.db.execute(
            "INSERT INTO api_tokens (name, token_hash, scopes, created_by, created_at) "
            "VALUES (?,?,?,?,?)", (name, _hash(token), json.dumps(sorted(set(scopes))), by,
                                   store.clock.wall()))
        audit.record(store, who=by, action="issue", obj="api_token", key=name,
                     after={"scopes": sorted(set(scopes))}, source=source)
    return token


def verify(store, token: str) -> dict | None:
    """The integration a live token belongs to ({name, scopes}), or None."""
    if not token.startswith(PREFIX):
        return None
    row = store.db.execute("SELECT id, name, scopes, last_used_at FROM api_tokens WHERE "
                           "token_hash=? AND revoked_at IS NULL", (_hash(token),)).fetchone()
    if row is None:
        return None
    now = store.clock.wall()
    if row["last_used_at"] is None or now - row["last_used_at"] > 60:  # at most once a minute
        store.submit(_used, row["id"], now)  # on the store's writer, never on the event loop
    return {"name": row["name"], "scopes": json.loads(row["scopes"])}


def _used(store, token_id: int, now: float) -> None:
    store.db.execute("UPDATE api_tokens SET last_used_at=MAX(COALESCE(last_used_at, 0), ?) "
                     "WHERE id=?", (now, token_id))


def revoke(store, name: str, *, by: str, source: str = "") -> None:
    with store.tx():
        cur = store.db.execute("UPDATE api_tokens SET revoked_at=? WHERE name=? AND "
                               "revoked_at IS NULL", (store.clock.wall(), name))
        if cur.rowcount == 0:
            raise UserError(f"no live token for integration {name!r}")
        audit.record(store, who=by, action="revoke", obj="api_token", key=name, source=source)
    # The name may be issued again: rename the revoked row out of the way.
    store.db.execute("UPDATE api_tokens SET name = name || ' (revoked ' || id || ')' WHERE "
                     "name=? AND revoked_at IS NOT NULL", (name,))


def tokens(store) -> list[dict]:
    return [{"name": r["name"], "scopes": json.loads(r["scopes"]), "created_by": r["created_by"],
             "created_at": r["created_at"], "last_used_at": r["last_used_at"],
             "revoked": r["revoked_at"] is not None}
            for r in store.db.execute("SELECT * FROM api_tokens ORDER BY id")]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
