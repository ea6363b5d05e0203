"""The one error the compliance library raises for bad input."""
from __future__ import annotations


class ComplianceError(ValueError):
    """Bad input to the compliance engine (unknown profile, phone, zone, time); says what and where."""
