"""Russian federal subjects and their IANA time zones, looked up by name or code."""
from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

MSK = ("Europe/Moscow",)


@dataclass(frozen=True, slots=True)
class Subject:
    """One federal subject: its code, ISO 3166-2 code, time zones and the names people use."""

    code: str                     # two-digit subject code (as in INN, passport, OKATO order)
    iso: str | None               # ISO 3166-2:RU; None for subjects ISO does not list under RU
    zones: tuple[str, ...]        # several zones: the subject spans them (ambiguous)
    vehicle: tuple[str, ...]      # vehicle registration codes in use
    names: tuple[str, ...]        # Russian and English names and common short forms


# Vehicle codes are those in current use; codes of okrugs merged away before 2008 are left out
# because several of them now belong to other subjects. Two codes mean different subjects in the
# two schemes (91: Crimea's subject code, Kaliningrad's vehicle code; also 90, 93, 95); a lookup
# by number returns every subject that uses it, and the caller treats their zones as ambiguous.
SUBJECTS: tuple[Subject, ...] = (
    Subject("01", "RU-AD", MSK, ("01",), ("Республика Адыгея", "Адыгея", "Adygea", "Adygeya")),
    Subject("02", "RU-BA", ("Asia/Yekaterinburg",), ("02", "102", "702"),
            ("Республика Башкортостан", "Башкортостан", "Башкирия", "Bashkortostan")),
    Subject("03", "RU-BU", ("Asia/Irkutsk",), ("03", "103"),
            ("Республика Бурятия", "Бурятия", "Buryatia")),
    Subject("04", "RU-AL", ("Asia/Barnaul",), ("04",),
            ("Республика Алтай", "Altai Republic", "Altay Republic")),
    Subject("05", "RU-DA", MSK, ("05",), ("Республика Дагестан", "Дагестан", "Dagestan")),
    Subject("06", "RU-IN", MSK, ("06",), ("Республика Ингушетия", "Ингушетия", "Ingushetia")),
    Subject("07", "RU-KB", MSK, ("07",),
            ("Кабардино-Балкарская Республика", "Кабардино-Балкария", "Kabardino-Balkaria")),
    Subject("08", "RU-KL", MSK, ("08",), ("Республика Калмыкия", "Калмыкия", "Kalmykia")),
    Subject("09", "RU-KC", MSK, ("09",),
            ("Карачаево-Черкесская Республика", "Карачаево-Черкесия", "Karachay-Cherkessia")),
    Subject("10", "RU-KR", MSK, ("10",), ("Республика Карелия", "Карелия", "Karelia")),
    Subject("11", "RU-KO", MSK, ("11",), ("Республика Коми", "Коми", "Komi Republic", "Komi")),
    Subject("12", "RU-ME", MSK, ("12",), ("Республика Марий Эл", "Марий Эл", "Mari El")),
    Subject("13", "RU-MO", MSK, ("13", "113"),
            ("Республика Мордовия", "Мордовия", "Mordovia")),
    # Yakutia spans UTC+9 (Yakutsk, Khandyga), UTC+10 (Ust-Nera) and UTC+11 (Srednekolymsk).
    Subject("14", "RU-SA", ("Asia/Yakutsk", "Asia/Khandyga", "Asia/Ust-Nera",
                            "Asia/Srednekolymsk"), ("14",),
            ("Республика Саха (Якутия)", "Республика Саха", "Якутия", "Sakha Republic",
             "Sakha", "Yakutia")),
    Subject("15", "RU-SE", MSK, ("15",),
            ("Республика Северная Осетия — Алания", "Северная Осетия", "North Ossetia-Alania",
             "North Ossetia")),
    Subject("16", "RU-TA", MSK, ("16", "116", "716"),
            ("Республика Татарстан", "Татарстан", "Tatarstan")),
    Subject("17", "RU-TY", ("Asia/Krasnoyarsk",), ("17",),
            ("Республика Тыва", "Тыва", "Тува", "Tuva", "Tyva")),
    Subject("18", "RU-UD", ("Europe/Samara",), ("18",),
            ("Удмуртская Республика", "Удмуртия", "Udmurtia")),
    Subject("19", "RU-KK", ("Asia/Krasnoyarsk",), ("19",),
            ("Республика Хакасия", "Хакасия", "Khakassia")),
    Subject("20", "RU-CE", MSK, ("20", "95"),
            ("Чеченская Республика", "Чечня", "Chechen Republic", "Chechnya")),
    Subject("21", "RU-CU", MSK, ("21", "121"),
            ("Чувашская Республика", "Чувашская Республика — Чувашия", "Чувашия", "Chuvashia",
             "Chuvash Republic")),
    Subject("22", "RU-ALT", ("Asia/Barnaul",), ("22", "122"), ("Алтайский край", "Altai Krai")),
    Subject("23", "RU-KDA", MSK, ("23", "93", "123", "193"),
            ("Краснодарский край", "Кубань", "Krasnodar Krai", "Krasnodar")),
    Subject("24", "RU-KYA", ("Asia/Krasnoyarsk",), ("24", "124"),
            ("Красноярский край", "Krasnoyarsk Krai", "Krasnoyarsk")),
    Subject("25", "RU-PRI", ("Asia/Vladivostok",), ("25", "125"),
            ("Приморский край", "Приморье", "Primorsky Krai", "Primorye")),
    Subject("26", "RU-STA", MSK, ("26", "126"), ("Ставропольский край", "Stavropol Krai")),
    Subject("27", "RU-KHA", ("Asia/Vladivostok",), ("27",),
            ("Хабаровский край", "Khabarovsk Krai", "Khabarovsk")),
    Subject("28", "RU-AMU", ("Asia/Yakutsk",), ("28",), ("Амурская область", "Amur Oblast")),
    Subject("29", "RU-ARK", MSK, ("29",), ("Архангельская область", "Arkhangelsk Oblast")),
    Subject("30", "RU-AST", ("Europe/Astrakhan",), ("30",),
            ("Астраханская область", "Astrakhan Oblast")),
    Subject("31", "RU-BEL", MSK, ("31",), ("Белгородская область", "Belgorod Oblast")),
    Subject("32", "RU-BRY", MSK, ("32",), ("Брянская область", "Bryansk Oblast")),
    Subject("33", "RU-VLA", MSK, ("33",), ("Владимирская область", "Vladimir Oblast")),
    Subject("34", "RU-VGG", ("Europe/Volgograd",), ("34", "134"),
            ("Волгоградская область", "Volgograd Oblast")),
    Subject("35", "RU-VLG", MSK, ("35",), ("Вологодская область", "Vologda Oblast")),
    Subject("36", "RU-VOR", MSK, ("36", "136"), ("Воронежская область", "Voronezh Oblast")),
    Subject("37", "RU-IVA", MSK, ("37",), ("Ивановская область", "Ivanovo Oblast")),
    Subject("38", "RU-IRK", ("Asia/Irkutsk",), ("38", "138"),
            ("Иркутская область", "Irkutsk Oblast")),
    Subject("39", "RU-KGD", ("Europe/Kaliningrad",), ("39", "91"),
            ("Калининградская область", "Kaliningrad Oblast")),
    Subject("40", "RU-KLU", MSK, ("40",), ("Калужская область", "Kaluga Oblast")),
    Subject("41", "RU-KAM", ("Asia/Kamchatka",), ("41",),
            ("Камчатский край", "Камчатка", "Kamchatka Krai", "Kamchatka")),
    Subject("42", "RU-KEM", ("Asia/Novokuznetsk",), ("42", "142"),
            ("Кемеровская область", "Кемеровская область — Кузбасс", "Кузбасс",
             "Kemerovo Oblast", "Kuzbass")),
    Subject("43", "RU-KIR", ("Europe/Kirov",), ("43",), ("Кировская область", "Kirov Oblast")),
    Subject("44", "RU-KOS", MSK, ("44",), ("Костромская область", "Kostroma Oblast")),
    Subject("45", "RU-KGN", ("Asia/Yekaterinburg",), ("45",),
            ("Курганская область", "Kurgan Oblast")),
    Subject("46", "RU-KRS", MSK, ("46",), ("Курская область", "Kursk Oblast")),
    Subject("47", "RU-LEN", MSK, ("47", "147"), ("Ленинградская область", "Leningrad Oblast")),
    Subject("48", "RU-LIP", MSK, ("48",), ("Липецкая область", "Lipetsk Oblast")),
    Subject("49", "RU-MAG", ("Asia/Magadan",), ("49",),
            ("Магаданская область", "Magadan Oblast", "Magadan")),
    Subject("50", "RU-MOS", MSK, ("50", "90", "150", "190", "750", "790"),
            ("Московская область", "Подмосковье", "Moscow Oblast")),
    Subject("51", "RU-MUR", MSK, ("51",), ("Мурманская область", "Murmansk Oblast")),
    Subject("52", "RU-NIZ", MSK, ("52", "152"),
            ("Нижегородская область", "Nizhny Novgorod Oblast")),
    Subject("53", "RU-NGR", MSK, ("53",), ("Новгородская область", "Novgorod Oblast")),
    Subject("54", "RU-NVS", ("Asia/Novosibirsk",), ("54", "154"),
            ("Новосибирская область", "Novosibirsk Oblast")),
    Subject("55", "RU-OMS", ("Asia/Omsk",), ("55",), ("Омская область", "Omsk Oblast", "Omsk")),
    Subject("56", "RU-ORE", ("Asia/Yekaterinburg",), ("56",),
            ("Оренбургская область", "Orenburg Oblast")),
    Subject("57", "RU-ORL", MSK, ("57",), ("Орловская область", "Oryol Oblast", "Orel Oblast")),
    Subject("58", "RU-PNZ", MSK, ("58",), ("Пензенская область", "Penza Oblast")),
    Subject("59", "RU-PER", ("Asia/Yekaterinburg",), ("59", "159"),
            ("Пермский край", "Perm Krai")),
    Subject("60", "RU-PSK", MSK, ("60",), ("Псковская область", "Pskov Oblast")),
    Subject("61", "RU-ROS", MSK, ("61", "161", "761"), ("Ростовская область", "Rostov Oblast")),
    Subject("62", "RU-RYA", MSK, ("62",), ("Рязанская область", "Ryazan Oblast")),
    Subject("63", "RU-SAM", ("Europe/Samara",), ("63", "163", "763"),
            ("Самарская область", "Samara Oblast", "Samara")),
    Subject("64", "RU-SAR", ("Europe/Saratov",), ("64", "164"),
            ("Саратовская область", "Saratov Oblast")),
    Subject("65", "RU-SAK", ("Asia/Sakhalin",), ("65",),
            ("Сахалинская область", "Sakhalin Oblast")),
    Subject("66", "RU-SVE", ("Asia/Yekaterinburg",), ("66", "96", "196"),
            ("Свердловская область", "Sverdlovsk Oblast")),
    Subject("67", "RU-SMO", MSK, ("67",), ("Смоленская область", "Smolensk Oblast")),
    Subject("68", "RU-TAM", MSK, ("68",), ("Тамбовская область", "Tambov Oblast")),
    Subject("69", "RU-TVE", MSK, ("69",), ("Тверская область", "Tver Oblast")),
    Subject("70", "RU-TOM", ("Asia/Tomsk",), ("70",), ("Томская область", "Tomsk Oblast")),
    Subject("71", "RU-TUL", MSK, ("71",), ("Тульская область", "Tula Oblast")),
    Subject("72", "RU-TYU", ("Asia/Yekaterinburg",), ("72",),
            ("Тюменская область", "Tyumen Oblast")),
    Subject("73", "RU-ULY", ("Europe/Ulyanovsk",), ("73", "173"),
            ("Ульяновская область", "Ulyanovsk Oblast")),
    Subject("74", "RU-CHE", ("Asia/Yekaterinburg",), ("74", "174", "774"),
            ("Челябинская область", "Chelyabinsk Oblast")),
    Subject("75", "RU-ZAB", ("Asia/Chita",), ("75",),
            ("Забайкальский край", "Zabaykalsky Krai", "Zabaykalsky")),
    Subject("76", "RU-YAR", MSK, ("76",), ("Ярославская область", "Yaroslavl Oblast")),
    Subject("77", "RU-MOW", MSK, ("77", "97", "99", "177", "197", "199", "777", "797", "799",
                                  "977"),
            ("Москва", "г. Москва", "Moscow", "Moscow City")),
    Subject("78", "RU-SPE", MSK, ("78", "98", "178", "198"),
            ("Санкт-Петербург", "г. Санкт-Петербург", "Петербург", "Saint Petersburg",
             "St. Petersburg", "St Petersburg")),
    Subject("79", "RU-YEV", ("Asia/Vladivostok",), ("79",),
            ("Еврейская автономная область", "Jewish Autonomous Oblast")),
    Subject("83", "RU-NEN", MSK, ("83",),
            ("Ненецкий автономный округ", "Nenets Autonomous Okrug")),
    Subject("86", "RU-KHM", ("Asia/Yekaterinburg",), ("86", "186"),
            ("Ханты-Мансийский автономный округ — Югра", "Ханты-Мансийский автономный округ",
             "Югра", "ХМАО", "Khanty-Mansi Autonomous Okrug", "Yugra")),
    Subject("87", "RU-CHU", ("Asia/Anadyr",), ("87",),
            ("Чукотский автономный округ", "Чукотка", "Chukotka Autonomous Okrug", "Chukotka")),
    Subject("89", "RU-YAN", ("Asia/Yekaterinburg",), ("89",),
            ("Ямало-Ненецкий автономный округ", "ЯНАО", "Yamalo-Nenets Autonomous Okrug")),
    # Subjects that ISO 3166-2 does not list under RU: subject and vehicle codes only.
    Subject("90", None, MSK, ("85", "185"),
            ("Запорожская область", "Zaporozhye Oblast", "Zaporizhzhia Oblast")),
    Subject("91", None, ("Europe/Simferopol",), ("82",),
            ("Республика Крым", "Крым", "Republic of Crimea", "Crimea")),
    Subject("92", None, ("Europe/Simferopol",), ("92",), ("Севастополь", "г. Севастополь",
                                                         "Sevastopol")),
    Subject("93", None, MSK, ("80", "180"),
            ("Донецкая Народная Республика", "ДНР", "Donetsk People's Republic")),
    Subject("94", None, MSK, ("81", "181"),
            ("Луганская Народная Республика", "ЛНР", "Luhansk People's Republic",
             "Lugansk People's Republic")),
    Subject("95", None, MSK, ("84", "184"),
            ("Херсонская область", "Kherson Oblast")),
)

# Words that only say what kind of subject it is; dropped for a second, looser match.
_KIND_WORDS = frozenset(
    "республика респ область обл край автономный автономная округ ао г город federal "
    "republic oblast obl krai kray region autonomous okrug ao of the city".split())


def _norm(text: str) -> str:
    # Stress marks (Луга́нская) are combining characters: drop them; keep й (NFC again).
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)
                   or c == "\u0306")
    text = unicodedata.normalize("NFC", text)
    text = text.casefold().replace("ё", "е").replace("—", " ").replace("-", " ")
    return " ".join(re.findall(r"[\w']+", text))


def _loose(text: str) -> str:
    return " ".join(w for w in _norm(text).split() if w not in _KIND_WORDS)


def _index() -> tuple[dict[str, list[Subject]], dict[str, list[Subject]], dict[str, list[Subject]]]:
    exact: dict[str, list[Subject]] = {}
    loose: dict[str, list[Subject]] = {}
    codes: dict[str, list[Subject]] = {}
    for s in SUBJECTS:
        keys = {_norm(n) for n in s.names}
        if s.iso:
            keys |= {_norm(s.iso), _norm(s.iso.removeprefix("RU-"))}
        for k in keys:
            exact.setdefault(k, []).append(s)
        for k in {_loose(n) for n in s.names} - {""}:
            loose.setdefault(k, []).append(s)
        for c in {s.code, *s.vehicle}:
            codes.setdefault(c, []).append(s)
    return exact, loose, codes


_EXACT, _LOOSE, _CODES = _index()


def find_subjects(region: str) -> tuple[Subject, ...]:
    """Subjects a region string may mean: a name, ISO code, subject or vehicle code; () if none."""
    text = region.strip()
    if text.isdigit():
        return tuple(_CODES.get(text.zfill(2), ()))
    for table, key in ((_EXACT, _norm(text)), (_LOOSE, _loose(text))):
        if key and key in table:
            return tuple(dict.fromkeys(table[key]))
    return ()


def zones_for_region(region: str) -> tuple[str, ...]:
    """IANA zones of every subject ``region`` may mean, in table order; () when unknown."""
    zones: dict[str, None] = {}
    for s in find_subjects(region):
        zones.update(dict.fromkeys(s.zones))
    return tuple(zones)


def suggest(region: str) -> list[str]:
    """Close subject names for a misspelled region (for error messages)."""
    names = [n for s in SUBJECTS for n in s.names]
    by_norm = {_norm(n): n for n in names}
    return [by_norm[k] for k in difflib.get_close_matches(_norm(region), by_norm, n=3, cutoff=0.6)]
