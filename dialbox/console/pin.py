"""The field-service PIN: an argon2 hash in the data directory; a one-time PIN on first start."""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from firmware.errors import UserError

HASH_FILE = "console-pin"
INITIAL_FILE = "initial-console-pin"
_hasher = PasswordHasher()


def check_new(pin: str) -> str:
    """A new PIN as typed, or UserError saying what is wrong with it."""
    pin = pin.strip()
    if not re.fullmatch(r"[0-9]{6,12}", pin):
        raise UserError("a PIN has 6 to 12 digits")
    if len(set(pin)) == 1 or pin in "01234567890123" or pin in "98765432109876":
        raise UserError("that PIN is too easy to guess (all one digit or a run)")
    return pin


class PinStore:
    """Where the console's PIN lives: ``DATA/console-pin`` (hash), owner-only."""

    def __init__(self, data: Path) -> None:
        self.data = Path(data)

    @property
    def hash_path(self) -> Path:
        return self.data / HASH_FILE

    @property
    def initial_path(self) -> Path:
        return self.data / INITIAL_FILE

    def ensure(self) -> str | None:
        """First start: make a one-time PIN, write it for the owner only; returns it (else None)."""
        if self.hash_path.exists():
            return None
        pin = "".join(secrets.choice("0123456789") for _ in range(8))
        while True:
            try:
                check_new(pin)
                break
            except UserError:
                pin = "".join(secrets.choice("0123456789") for _ in range(8))
        _write_private(self.initial_path, pin + "\n")
        _write_private(self.hash_path, _hasher.hash(pin) + "\n")
        return pin

    def verify(self, pin: str) -> bool:
        """Whether ``pin`` is right (slow on purpose: call it off the event loop)."""
        try:
            stored = self.hash_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return False
        try:
            return _hasher.verify(stored, pin.strip())
        except (VerificationError, InvalidHashError):
            return False

    @property
    def one_time(self) -> bool:
        """Whether the PIN in force is still the one written at first start."""
        return self.initial_path.exists()

    def set(self, pin: str) -> None:
        """A new PIN replaces the old one; the one-time PIN file is removed."""
        pin = check_new(pin)
        _write_private(self.hash_path, _hasher.hash(pin) + "\n")
        self.initial_path.unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
