"""The debtor's time zones: from his IANA zone, else his Russian region, else his phone number."""
from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as phone_timezone

from controller.compliance.errors import ComplianceError
from controller.compliance.regions import SUBJECTS, zones_for_region

_RUSSIAN_ZONES = frozenset(z for s in SUBJECTS for z in s.zones)
# phonenumbers gives Kaliningrad numbers the zone of another UTC+2 city; Bucharest keeps summer
# time and Kaliningrad does not, so a call "at 08:00" would land at 07:00 in summer.
_RU_ZONE_FIXES = {"Europe/Bucharest": "Europe/Kaliningrad"}


@dataclass(frozen=True, slots=True)
class Zones:
    """Where the zones came from (``tz``, ``region``, ``phone`` or None) and the zones."""

    zones: tuple[str, ...]
    source: str | None
    note: str = ""


def normalize_phone(raw: str, default_region: str = "RU") -> str:
    """E.164 form of a phone number as people write it; ComplianceError if it is not one."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ComplianceError(f"phone {raw!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise ComplianceError(f"phone {raw!r} is not a valid number for region {default_region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; ComplianceError if there is no such zone."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ComplianceError(
            f"time zone {name!r} is not an IANA zone name (e.g. Europe/Moscow)") from None


def zones_for_phone(e164: str) -> tuple[str, ...]:
    """Zones of an E.164 number (a national one is read as Russian), fixed for Russia."""
    number = phonenumbers.parse(e164, "RU")
    if phonenumbers.region_code_for_number(number) == "RU":
        # phonenumbers' zone data lags behind Russian changes (it still puts Saratov, UTC+4 since
        # 2016, in Moscow time); its geocoder names the subject of a landline, and our table
        # knows the subject's zones. Mobile numbers geocode to just "Russia".
        by_subject = zones_for_region(geocoder.description_for_number(number, "ru"))
        if by_subject:
            return by_subject
    found = [z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    if phonenumbers.region_code_for_number(number) == "RU":
        # +7 is shared with Kazakhstan; a Russian number's debtor lives in a Russian zone.
        found = [_RU_ZONE_FIXES.get(z, z) for z in found]
        found = [z for z in found if z in _RUSSIAN_ZONES]
    return tuple(dict.fromkeys(found))


def resolve(tz: str | None, region: str | None, phone: str | None) -> Zones:
    """The first source that knows: IANA zone, Russian region, phone; Zones((), None) if none."""
    notes = []
    if tz:
        try:
            zone(tz)
            return Zones((tz,), "tz")
        except ComplianceError as exc:
            notes.append(str(exc))
    if region:
        found = zones_for_region(region)
        if found:
            return Zones(found, "region", "; ".join(notes))
        notes.append(f"region {region!r} is not a Russian federal subject we know")
    if phone:
        try:
            found = zones_for_phone(phone)
        except phonenumbers.NumberParseException:
            notes.append(f"phone {phone!r} is not a phone number")
        else:
            if found:
                return Zones(found, "phone", "; ".join(notes))
            notes.append("the phone number does not tell the time zone")
    return Zones((), None, "; ".join(notes) or "no time zone, region or phone number")
