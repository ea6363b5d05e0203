"""Russian federal subjects table, region lookup, phone normalization and phone zones."""
from __future__ import annotations

import re
import zoneinfo

import phonenumbers
import pytest
from phonenumbers.geodata import GEOCODE_DATA

from controller.compliance import ComplianceError, normalize_phone
from controller.compliance.regions import SUBJECTS, find_subjects, suggest, zones_for_region
from controller.compliance.zones import resolve, zones_for_phone


def test_all_89_subjects_with_unique_codes_and_real_zones():
    assert len(SUBJECTS) == 89
    assert len({s.code for s in SUBJECTS}) == 89
    isos = [s.iso for s in SUBJECTS if s.iso]
    assert len(isos) == len(set(isos)) == 83
    assert all(re.fullmatch(r"RU-[A-Z]{2,3}", iso) for iso in isos)
    available = zoneinfo.available_timezones()
    for s in SUBJECTS:
        assert s.zones and set(s.zones) <= available, s
        assert any(re.search("[а-я]", n) for n in s.names), s
        assert any(re.fullmatch(r"[A-Za-z .'\-]+", n) for n in s.names), s


@pytest.mark.parametrize("region,zones", [
    ("Калининградская область", ("Europe/Kaliningrad",)),
    ("Kaliningrad Oblast", ("Europe/Kaliningrad",)),
    ("RU-KGD", ("Europe/Kaliningrad",)),
    ("39", ("Europe/Kaliningrad",)),
    ("Самарская обл.", ("Europe/Samara",)),
    ("RU-SVE", ("Asia/Yekaterinburg",)),
    ("66", ("Asia/Yekaterinburg",)),
    ("196", ("Asia/Yekaterinburg",)),          # a three-digit vehicle code
    ("Омская область", ("Asia/Omsk",)),
    ("Красноярский край", ("Asia/Krasnoyarsk",)),
    ("Irkutsk Oblast", ("Asia/Irkutsk",)),
    ("Приморский край", ("Asia/Vladivostok",)),
    ("Magadan Oblast", ("Asia/Magadan",)),
    ("Камчатский край", ("Asia/Kamchatka",)),
    ("41", ("Asia/Kamchatka",)),
    ("г. Москва", ("Europe/Moscow",)),
    ("Moscow", ("Europe/Moscow",)),
    ("777", ("Europe/Moscow",)),
    ("Респ. Татарстан", ("Europe/Moscow",)),
    ("Республика Крым", ("Europe/Simferopol",)),
    ("Чукотский АО", ("Asia/Anadyr",)),
    ("Ханты-Мансийский автономный округ — Югра", ("Asia/Yekaterinburg",)),
    ("  республика саха (якутия) ", ("Asia/Yakutsk", "Asia/Khandyga", "Asia/Ust-Nera",
                                     "Asia/Srednekolymsk")),
    ("5", ("Europe/Moscow",)),                 # Dagestan, leading zero dropped
])
def test_region_lookup(region, zones):
    assert zones_for_region(region) == zones


def test_code_used_by_two_subjects_gives_both_zones():
    # 91: Crimea's subject code and a Kaliningrad vehicle code.
    assert {s.code for s in find_subjects("91")} == {"39", "91"}
    assert set(zones_for_region("91")) == {"Europe/Kaliningrad", "Europe/Simferopol"}


@pytest.mark.parametrize("region", ["Нарния", "", "RU-XXX", "00", "Moscow Oblast Kaliningrad"])
def test_unknown_region(region):
    assert zones_for_region(region) == ()


def test_suggest_for_misspelled_region():
    assert suggest("Свердловская обалсть")[0] == "Свердловская область"


def test_every_russian_geocoder_region_resolves():
    # A landline's zone comes from the geocoder's subject name: each must be in the table.
    names = {v["ru"] for k, v in GEOCODE_DATA.items()
             if k.startswith("7") and k[:2] not in ("76", "77") and "ru" in v}
    unresolved = {n for n in names if not find_subjects(n)} - {"Байконыр", "Россия"}
    assert names and not unresolved


@pytest.mark.parametrize("raw", ["8 (912) 345-67-89", "89123456789", "9123456789",
                                 "+7 912 345 67 89", "+7(912)345-6789"])
def test_normalize_russian_phone(raw):
    assert normalize_phone(raw) == "+79123456789"


@pytest.mark.parametrize("raw", ["", "abc", "123", "+7 912 345", "8 (000) 000-00-00"])
def test_bad_phone(raw):
    with pytest.raises(ComplianceError, match="phone"):
        normalize_phone(raw)


def test_kaliningrad_number_is_not_given_bucharest_time():
    # Bucharest keeps summer time, Kaliningrad does not: in July they are an hour apart.
    assert phonenumbers.timezone.time_zones_for_number(
        phonenumbers.parse("+74012123456")) == ("Europe/Bucharest",)
    assert zones_for_phone("+74012123456") == ("Europe/Kaliningrad",)


def test_russian_mobile_gets_only_russian_zones():
    zones = set(zones_for_phone("+79123456789"))
    assert {"Europe/Kaliningrad", "Europe/Moscow", "Asia/Kamchatka"} <= zones
    assert not zones & {"Asia/Almaty", "Asia/Aqtobe", "Europe/Bucharest"}


def test_resolve_says_why_nothing_was_found():
    found = resolve("Bad/Zone", "Нарния", "+80012345678")
    assert found.zones == () and found.source is None
    assert "Bad/Zone" in found.note and "Нарния" in found.note and "phone" in found.note


def test_resolve_reads_a_national_phone_as_russian_and_survives_garbage():
    assert resolve(None, None, "8 (4012) 12-34-56").zones == ("Europe/Kaliningrad",)
    found = resolve(None, None, "not a phone")
    assert found.zones == () and found.note == "phone 'not a phone' is not a phone number"
