"""Hardware profiles shipped with dialbox (YAML data, found without the source tree)."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def path(name: str) -> Path:
    """Path of a bundled profile by file name (``sim-gsm-4.yaml``) or stem (``sim-gsm-4``)."""
    if not name.endswith(".yaml"):
        name += ".yaml"
    return Path(str(files(__name__).joinpath(name)))


def names() -> list[str]:
    """Stems of all bundled profiles."""
    return sorted(p.name[:-5] for p in files(__name__).iterdir() if p.name.endswith(".yaml"))
