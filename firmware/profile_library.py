"""The box's hardware profiles: the bundled ones and the shop's own, edited as YAML text.

A profile the technician edits is saved under the data directory (``profiles/NAME.yaml``) and
then wins over the bundled one of the same name. Nothing invalid is ever saved: the text is
checked first, and each problem comes back with its line.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hw_profiles
from firmware import profiles
from firmware.errors import N_, UserError
from firmware.yamlsrc import ConfigError, Problem, Source

MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Entry:
    name: str
    custom: bool  # the shop's own (or an edited copy of a bundled one)
    bundled: bool  # a bundled profile of this name exists


class ProfileLibrary:
    def __init__(self, custom_dir: str | Path) -> None:
        self.dir = Path(custom_dir)

    def entries(self) -> list[Entry]:
        custom = {p.stem for p in self.dir.glob("*.yaml")} if self.dir.is_dir() else set()
        bundled = set(hw_profiles.names())
        return [Entry(n, n in custom, n in bundled) for n in sorted(custom | bundled)]

    def path(self, name: str) -> Path:
        """Where the profile ``name`` is read from (the shop's copy first)."""
        _check_name(name)
        own = self.dir / f"{name}.yaml"
        if own.exists():
            return own
        if name in hw_profiles.names():
            return hw_profiles.path(name)
        raise UserError("no hardware profile named {name}", name=name)

    def text(self, name: str) -> str:
        return self.path(name).read_text(encoding="utf-8")

    def check(self, name: str, text: str) -> list[Problem]:
        """Every problem of ``text`` as the profile ``name``, each with its line."""
        _check_name(name)
        if len(text.encode("utf-8")) > MAX_BYTES:
            return [Problem(f"{name}.yaml", 1, N_("the profile is too large"))]
        try:
            return profiles.check(Source(text, f"{name}.yaml"))
        except ConfigError as exc:
            return list(exc.problems)

    def save(self, name: str, text: str) -> list[Problem]:
        """Save the shop's version of ``name`` when it is valid; the problems otherwise."""
        problems = self.check(name, text)
        if problems:
            return problems
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self.dir / f"{name}.yaml"
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            if target.exists():
                os.replace(target, self.dir / f"{name}.yaml.prev")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return []


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or name.endswith(".yaml"):
        raise UserError("profile name {name}: letters, digits, - _ . only", name=name)
