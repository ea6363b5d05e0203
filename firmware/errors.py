"""Errors a person can act on."""
from __future__ import annotations

import errno
from typing import Any


class UserError(Exception):
    """Printed as one clear line (what, where, what to do); exit code 1; never a traceback.

    `UserError("no campaign named {name}", name=n)`: the message is the English text with
    `{name}` placeholders, so the web admin can show it translated (it is extracted into the
    gettext catalogues as written); `str()` is the English text filled in.
    """

    def __init__(self, message: str = "", /, **params: Any) -> None:
        self.message = message
        self.params = params
        super().__init__(message.format(**params) if params else message)


class InputError(UserError, ValueError):
    """A value a person typed is wrong: "field: what is wrong, what to type"."""


class UserErrors(tuple):
    """Several messages shown as one (a param of another UserError): joined with "; "."""

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self)


class Msg(str):
    """A message with its values: the English text wherever it is used as a string, and the
    template and values for a page that shows it in its own language (`i18n.message_of`).

    `Msg("unknown key '{key}'{hint}", key=k, hint=...)`: a value may be another Msg (translated
    too); extracted into the catalogues like UserError.
    """

    message: str
    params: dict[str, Any]

    def __new__(cls, message: str, /, **params: Any) -> "Msg":
        self = super().__new__(cls, message.format(**params) if params else message)
        self.message = message
        self.params = params
        return self

    def __reduce__(self):
        return (_msg, (self.message, self.params))


def _msg(message: str, params: dict[str, Any]) -> Msg:
    return Msg(message, **params)


def msg_json(value: Any) -> Any:
    """A Msg as JSON keeps its template and values ({"message", "params"}), for a page that
    reads it back later (msg_from_json) in its own language; other values as they are."""
    if isinstance(value, Msg):
        return {"message": value.message,
                "params": {k: msg_json(v) for k, v in value.params.items()}}
    return value


def msg_from_json(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return Msg(value["message"], **{k: msg_from_json(v)
                                        for k, v in (value.get("params") or {}).items()})
    return value


def reason_of(exc: BaseException) -> str:
    """What an exception says, as a Msg when it carries one (its first argument, or a
    UserError's message and values) so a page can translate it; else its English text.
    (``str(exc)`` would lose the template: a reason is taken with this, never with str.)"""
    first = exc.args[0] if len(exc.args) == 1 else None
    if isinstance(first, Msg):
        return first
    if isinstance(exc, UserError) and exc.message:
        return Msg(exc.message, **exc.params)
    return str(exc)


_OS_ERRORS = {
    errno.ENOENT: Msg("the device is gone"),
    errno.ENODEV: Msg("the device is gone"),
    errno.ENXIO: Msg("the device is gone"),
    errno.EIO: Msg("input/output error (a loose cable or a failing device?)"),
    errno.EBUSY: Msg("the device is busy (another program holds it?)"),
    errno.EACCES: Msg("permission denied"),
    errno.EPERM: Msg("permission denied"),
    errno.ECONNRESET: Msg("the connection was reset"),
    errno.ECONNREFUSED: Msg("the connection was refused"),
    errno.EPIPE: Msg("the other end closed the connection"),
    errno.ETIMEDOUT: Msg("the connection timed out"),
    errno.EHOSTUNREACH: Msg("the host is unreachable"),
}


def os_reason(exc: BaseException) -> str:
    """What an operating-system error means, as a catalogue message a page shows in its own
    language (the system's own text is English); other errors as ``reason_of``."""
    if isinstance(exc, OSError) and exc.errno in _OS_ERRORS:
        return _OS_ERRORS[exc.errno]
    if isinstance(exc, OSError) and exc.errno is not None:
        return Msg("system error {code}", code=errno.errorcode.get(exc.errno, exc.errno))
    return reason_of(exc)


def N_(message: str) -> str:
    """Marks a message for the translation catalogues; it is translated where it is shown."""
    return message
