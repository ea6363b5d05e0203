"""The hot core: Cython extensions, each with a pure-Python twin of the same behaviour.

``IMPLEMENTATION`` is ``"cython"`` when every compiled module listed by a ``_*.pyx`` source beside
this file imports, else ``"python"``. ``DIALBOX_NO_EXTENSIONS=1`` forces the twins.
Modules pick their implementation through :func:`select`.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
COMPILED_MODULES = tuple(sorted(p.stem for p in _HERE.glob("_*.pyx")))


def _compiled_available() -> bool:
    if os.environ.get("DIALBOX_NO_EXTENSIONS"):
        return False
    try:
        for name in COMPILED_MODULES:
            importlib.import_module(f"cext.{name}")
    except ImportError:
        return False
    return bool(COMPILED_MODULES)


IMPLEMENTATION = "cython" if _compiled_available() else "python"


def select(name: str) -> ModuleType:
    """Return ``cext._<name>`` when the compiled core is in use, else ``cext.<name>_py``."""
    if IMPLEMENTATION == "cython":
        return importlib.import_module(f"cext._{name}")
    return importlib.import_module(f"cext.{name}_py")
