"""What the first start must not let scroll away: the admin's one-time password, in a box."""
from __future__ import annotations

import unicodedata


def box(lines: list[str]) -> str:
    """``lines`` framed with box-drawing characters, padded to the widest (wide glyphs count 2)."""
    width = max(_width(s) for s in lines)
    top = "╔" + "═" * (width + 2) + "╗"
    bottom = "╚" + "═" * (width + 2) + "╝"
    body = [f"║ {s}{' ' * (width - _width(s))} ║" for s in lines]
    return "\n".join([top, *body, bottom])


def first_start(url: str, password: str, where: str) -> str:
    return box([
        "FIRST START / ПЕРВЫЙ ЗАПУСК",
        "",
        f"Web admin / Веб-админка:  {url}",
        "User / Пользователь:      admin",
        f"Password / Пароль:        {password}",
        "",
        f"Also saved in / Также в файле: {where}",
    ])


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
