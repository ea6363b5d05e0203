"""Collection law as data: may this debtor be contacted now, and if not, why and when."""
from __future__ import annotations

from controller.compliance.engine import Decision, LeadContext, Reason, Refusal, check
from controller.compliance.errors import ComplianceError
from controller.compliance.history import ContactHistory, InMemoryContactHistory, load_history
from controller.compliance.profiles import DEFAULT_PROFILE, PROFILES, Profile, get_profile
from controller.compliance.zones import normalize_phone

__all__ = [
    "DEFAULT_PROFILE", "PROFILES", "ComplianceError", "ContactHistory", "Decision",
    "InMemoryContactHistory", "LeadContext", "Profile", "Reason", "Refusal", "check",
    "get_profile", "load_history", "normalize_phone",
]
