"""People who log in to the web admin: argon2 password hashes, roles, sessions."""
from __future__ import annotations

import asyncio
import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from controller.store import Store
from firmware.errors import UserError

ROLES = ("admin", "supervisor", "technician", "operator")
SESSION_TTL_S = 12 * 3600  # a session lasts at most a long shift
SESSION_IDLE_S = 2 * 3600  # and ends after this long with no request
_TOUCH_S = 60  # last_seen is written at most this often (every write is an fsync)
_hasher = PasswordHasher()


def count(store: Store) -> int:
    return int(store.db.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def add(store: Store, username: str, password: str, *, role: str = "supervisor") -> None:
    check_new(username, role)
    add_hashed(store, username, hash_password(password), role=role)


async def new_user(store: Store, username: str, password: str, *,
                   role: str = "supervisor") -> None:
    """:func:`add` in a running box: the hash on a worker thread, the write on the store's
    writer (never on the event loop)."""
    check_new(username, role)
    hashed = await asyncio.to_thread(hash_password, password)
    await store.run(add_hashed, username, hashed, role=role)


async def new_password(store: Store, username: str, password: str, *,
                       keep_token: str | None = None) -> None:
    """:func:`set_password` in a running box (the hash off the loop, the write on the writer)."""
    hashed = await asyncio.to_thread(hash_password, password)
    await store.run(set_password_hash, username, hashed, keep_token=keep_token)


def check_new(username: str, role: str) -> None:
    """UserError unless a user may be made with this name and role."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{2,64}", username):
        raise UserError("user name {username}: use 2-64 letters, digits, _ . @ -",
                        username=username)
    if role not in ROLES:
        raise UserError("role {role} is not one of {roles}", role=role, roles=", ".join(ROLES))


def add_hashed(store: Store, username: str, password_hash: str, *,
               role: str = "supervisor") -> None:
    """A new user with a password hashed already (:func:`hash_password`, slow: not here)."""
    check_new(username, role)
    with store.tx():
        if store.db.execute("SELECT 1 FROM users WHERE username=?", (username,)).fetchone():
            raise UserError("user {username} already exists", username=username)
        store.db.execute("INSERT INTO users (username, password_hash, role, created_at) "
                         "VALUES (?,?,?,?)", (username, password_hash, role, store.clock.wall()))


def verify(store: Store, username: str, password: str) -> dict | None:
    """The user when the password is right, else None (same time either way, roughly)."""
    row = store.db.execute("SELECT id, username, password_hash, role, disabled FROM users "
                           "WHERE username=?", (username,)).fetchone()
    if row is None:
        _hasher.hash(password)  # spend the same effort: no user enumeration by timing
        return None
    try:
        _hasher.verify(row["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    if row["disabled"]:
        return None
    return {"id": row["id"], "username": row["username"], "role": row["role"]}


def open_session(store: Store, user_id: int, *, remote: str | None = None,
                 agent: str | None = None) -> tuple[str, str]:
    """A new session token and its CSRF token."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = store.clock.wall()
    with store.tx():
        store.db.execute("DELETE FROM sessions WHERE expires_at < ? OR last_seen < ?",
                         (now, now - SESSION_IDLE_S))
        store.db.execute("INSERT INTO sessions (token, user_id, csrf, created_at, expires_at, "
                         "last_seen, remote, agent) VALUES (?,?,?,?,?,?,?,?)",
                         (token, user_id, csrf, now, now + SESSION_TTL_S, now, remote,
                          (agent or "")[:200]))
    return token, csrf


def session_user(store: Store, token: str, *, touch: bool = True) -> dict | None:
    """The signed-in person of a live session (not expired, not idle too long, not disabled).
    ``touch=False``: only read; ``who["touch"]`` then says the session's last_seen is due a
    write (:func:`touch_session`)."""
    now = store.clock.wall()
    row = store.db.execute(
        "SELECT u.id, u.username, u.role, s.csrf, s.last_seen FROM sessions s JOIN users u ON "
        "u.id = s.user_id WHERE s.token=? AND s.expires_at > ? AND s.last_seen > ? AND "
        "u.disabled = 0", (token, now, now - SESSION_IDLE_S)).fetchone()
    if row is None:
        return None
    stale = now - row["last_seen"] > _TOUCH_S
    if stale and touch:
        touch_session(store, token, now)
    who = dict(row)
    del who["last_seen"]
    who["session"] = session_id(token)
    if not touch:
        who["touch"] = stale
    return who


def touch_session(store: Store, token: str, now: float) -> None:
    """The session was used at ``now`` (its idle time starts again)."""
    store.db.execute("UPDATE sessions SET last_seen=MAX(last_seen, ?) WHERE token=?",
                     (now, token))


def close_session(store: Store, token: str) -> None:
    with store.tx():
        store.db.execute("DELETE FROM sessions WHERE token=?", (token,))


def session_id(token: str) -> str:
    """What pages show of a session: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def sessions(store: Store) -> list[dict]:
    """Live sessions, newest first: id, user, role, from where, opened, last seen."""
    now = store.clock.wall()
    rows = store.db.execute(
        "SELECT s.token, u.username, u.role, s.remote, s.agent, s.created_at, s.last_seen "
        "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.expires_at > ? AND "
        "s.last_seen > ? ORDER BY s.created_at DESC", (now, now - SESSION_IDLE_S)).fetchall()
    return [{"id": session_id(r["token"]), "username": r["username"], "role": r["role"],
             "remote": r["remote"], "agent": r["agent"], "created_at": r["created_at"],
             "last_seen": r["last_seen"]} for r in rows]


def revoke_session(store: Store, sid: str) -> str | None:
    """End the session with this id (as shown by :func:`sessions`); its user's name, or None."""
    for token, username in store.db.execute(
            "SELECT s.token, u.username FROM sessions s JOIN users u ON u.id = s.user_id"
            ).fetchall():
        if secrets.compare_digest(session_id(token), sid):
            close_session(store, token)
            return username
    return None


def end_sessions(store: Store, user_id: int, *, keep_token: str | None = None) -> int:
    """End every session of a user but ``keep_token`` (a password change, a disabled user)."""
    with store.tx():
        cur = store.db.execute("DELETE FROM sessions WHERE user_id=? AND token IS NOT ?",
                               (user_id, keep_token))
    return cur.rowcount


def _user_id(store: Store, username: str) -> int:
    row = store.db.execute("SELECT id FROM users WHERE username=?", (username,)).fetchone()
    if row is None:
        raise UserError("no user {username}", username=username)
    return int(row[0])


def set_disabled(store: Store, username: str, disabled: bool) -> None:
    """Disable (no sign-in, sessions ended) or enable again; the last admin stays."""
    uid = _user_id(store, username)
    with store.tx():
        if disabled:
            row = store.db.execute("SELECT role FROM users WHERE id=?", (uid,)).fetchone()
            admins = store.db.execute("SELECT COUNT(*) FROM users WHERE role='admin' AND "
                                      "disabled=0 AND id != ?", (uid,)).fetchone()[0]
            if row["role"] == "admin" and admins == 0:
                raise UserError("{username} is the last admin: make another admin first",
                                username=username)
        store.db.execute("UPDATE users SET disabled=? WHERE id=?", (int(disabled), uid))
        if disabled:
            end_sessions(store, uid)


def set_password(store: Store, username: str, password: str, *,
                 keep_token: str | None = None) -> None:
    """A new password (an admin's reset, or the person's own change): other sessions end."""
    set_password_hash(store, username, hash_password(password), keep_token=keep_token)


def set_role(store: Store, username: str, role: str) -> str:
    """A new role; the last enabled admin keeps his. Returns the role it had."""
    if role not in ROLES:
        raise UserError("role {role} is not one of {roles}", role=role, roles=", ".join(ROLES))
    uid = _user_id(store, username)
    with store.tx():
        old = store.db.execute("SELECT role, disabled FROM users WHERE id=?", (uid,)).fetchone()
        others = store.db.execute("SELECT COUNT(*) FROM users WHERE role='admin' AND "
                                  "disabled=0 AND id != ?", (uid,)).fetchone()[0]
        if old["role"] == "admin" and role != "admin" and not old["disabled"] and others == 0:
            raise UserError("{username} is the last admin: make another admin first",
                            username=username)
        store.db.execute("UPDATE users SET role=? WHERE id=?", (role, uid))
    return old["role"]


def set_team(store: Store, username: str, team: str | None) -> str | None:
    """The operator's team (campaigns can take whole teams); empty: none. Returns the old one."""
    team = (team or "").strip() or None
    if team is not None and not re.fullmatch(r"[\w .@-]{1,64}", team):
        raise UserError("team {team}: use 1-64 letters, digits, spaces, _ . @ -", team=team)
    uid = _user_id(store, username)
    with store.tx():
        old = store.db.execute("SELECT team FROM users WHERE id=?", (uid,)).fetchone()[0]
        store.db.execute("UPDATE users SET team=? WHERE id=?", (team, uid))
    return old


def listing(store: Store) -> list[dict]:
    return [dict(r) for r in store.db.execute(
        "SELECT username, role, team, disabled, created_at FROM users ORDER BY username")]


def hash_password(password: str) -> str:
    """The stored form of a new password (slow on purpose: off the event loop in a server)."""
    if len(password) < 10:
        raise UserError("the password must have at least 10 characters")
    return _hasher.hash(password)


def set_password_hash(store: Store, username: str, password_hash: str, *,
                      keep_token: str | None = None) -> None:
    """Store a new password (from :func:`hash_password`); the user's other sessions end."""
    uid = _user_id(store, username)
    with store.tx():
        store.db.execute("UPDATE users SET password_hash=? WHERE id=?", (password_hash, uid))
        end_sessions(store, uid, keep_token=keep_token)
