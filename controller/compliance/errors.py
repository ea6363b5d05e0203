"""The one error the compliance library raises for bad input."""
from __future__ import annotations


class ComplianceError(ValueError):
    """Bad input (unknown profile, phone, zone, time) to the compliance engine; says what, where."""
