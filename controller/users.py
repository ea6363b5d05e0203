"""People who log in to the web admin: argon2 password hashes, roles, sessions."""
from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from controller.store import Store
from firmware.errors import UserError

ROLES = ("admin", "supervisor", "technician", "operator")
SESSION_TTL_S = 12 * 3600
_hasher = PasswordHasher()


def count(store: Store) -> int:
    return int(store.db.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def add(store: Store, username: str, password: str, *, role: str = "supervisor") -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{2,64}", username):
        raise UserError(f"user name {username!r}: use 2-64 letters, digits, _ . @ -")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < 10:
        raise UserError("the password must have at least 10 characters")
    with store.tx():
        if store.db.execute("SELECT 1 FROM users WHERE username=?", (username,)).fetchone():
            raise UserError(f"user {username!r} already exists")
        store.db.execute("INSERT INTO users (username, password_hash, role, created_at) "
                         "VALUES (?,?,?,?)", (username, _hasher.hash(password), role, store.clock.wall()))


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


def open_session(store: Store, user_id: int) -> tuple[str, str]:
    """A new session token and its CSRF token."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = store.clock.wall()
    with store.tx():
        store.db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        store.db.execute("INSERT INTO sessions (token, user_id, csrf, created_at, expires_at) "
                         "VALUES (?,?,?,?,?)", (token, user_id, csrf, now, now + SESSION_TTL_S))
    return token, csrf


def session_user(store: Store, token: str) -> dict | None:
    row = store.db.execute(
        "SELECT u.id, u.username, u.role, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token=? AND s.expires_at > ? AND u.disabled = 0", (token, store.clock.wall())).fetchone()
    return dict(row) if row else None


def close_session(store: Store, token: str) -> None:
    with store.tx():
        store.db.execute("DELETE FROM sessions WHERE token=?", (token,))
