"""Errors a person can act on."""
from __future__ import annotations


class UserError(Exception):
    """Printed as one clear line (what, where, what to do); exit code 1; never a traceback."""
