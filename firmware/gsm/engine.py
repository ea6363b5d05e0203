"""AT request engine: one command in flight, responses matched to it, URCs routed wherever they come."""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Callable

import structlog

from firmware.errors import Msg
from firmware.gsm.framer import PROMPT, ATFramer, is_final

log = structlog.get_logger(__name__)
_wire = logging.getLogger("dialbox.wire")  # raw bytes at level 5 (TRACE), below DEBUG
TRACE = 5

# Lines that are unsolicited wherever they arrive (prefix match). A line that also answers the
# command in flight (``+CREG:`` for ``AT+CREG?``) goes to the command: see ``_expected_prefix``.
URC_PREFIXES = (
    "RING", "+CRING:", "+CLIP:", "+CLCC:", "+CMTI:", "+CDS:", "+CDSI:", "+CMT:", "+CBM:",
    "+CREG:", "+CGREG:", "+CEREG:", "+CUSD:", "+CPIN:", "+CFUN:", "^RSSI:", "^BOOT:", "^ORIG:",
    "^CONF:", "^CONN:", "^CEND:", "^MODE:", "^HCSQ:", "^SRVST:", "^DSFLOWRPT:", "^SYSSTART",
    "^DSCI:", "+QIND:", "Call Ready", "SMS Ready", "RDY", "PB DONE", "MO RING", "MO CONNECTED",
    "VOICE CALL:", "NORMAL POWER DOWN", "UNDER-VOLTAGE", "+CUSD", "+SIMCARD:", "^SIMST:",
)
# URCs whose payload is the next line (a PDU).
TWO_LINE_URCS = ("+CDS:", "+CMT:", "+CBM:")
# Final codes that, with no command in flight, report the end of a call.
CALL_END_CODES = ("NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")

_ERR_RE = re.compile(r"^\+(CME|CMS) ERROR:\s*(.*)$")


class ATError(Exception):
    """A command ended with an error final result."""

    def __init__(self, command: str, final: str, lines: list[str]) -> None:
        self.command, self.final, self.lines = command, final, lines
        m = _ERR_RE.match(final)
        self.kind = m.group(1) if m else None
        code = m.group(2).strip() if m else ""
        self.code: int | None = int(code) if code.isdigit() else None
        self.text = code if m and not code.isdigit() else final
        super().__init__(Msg("{command}: {final}", command=shown(command), final=final))


class ATTimeout(Exception):
    """No final result in time."""


class LinkLost(Exception):
    """The port went away while a command was in flight."""


@dataclass(slots=True)
class Response:
    command: str
    final: str
    lines: list[str] = field(default_factory=list)

    def first(self, prefix: str) -> str | None:
        """Payload of the first line starting with ``prefix`` (prefix stripped)."""
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        return None


@dataclass(slots=True)
class _Pending:
    command: str
    expect: str | None
    future: asyncio.Future
    prompt: asyncio.Future | None
    lines: list[str] = field(default_factory=list)
    abandoned: bool = False  # the caller stopped waiting; the module is still in the exchange


class ATEngine(asyncio.Protocol):
    """The protocol half talks to the transport; the request half serializes commands."""

    def __init__(self, on_urc: Callable[[str, str | None], None],
                 on_lost: Callable[[Exception | None], None], *,
                 urc_prefixes: tuple[str, ...] = URC_PREFIXES, name: str = "") -> None:
        self._on_urc = on_urc
        self._on_lost = on_lost
        self._urc_prefixes = tuple(urc_prefixes)
        self._framer = ATFramer()
        self._transport: asyncio.Transport | None = None
        self._pending: _Pending | None = None
        self._lock = asyncio.Lock()
        self._two_line: str | None = None
        self._quiet_until = 0.0
        self.name = name
        self.stale_finals = 0
        self.lost = False
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.lost = False
        self.connected.set()

    def data_received(self, data: bytes) -> None:
        if _wire.isEnabledFor(TRACE):
            _wire.log(TRACE, "%s rx %r", self.name, data)
        for item in self._framer.feed(data):
            try:
                self._dispatch(item)
            except Exception:  # a handler bug must never kill the link
                log.exception("at_dispatch_failed", port=self.name)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.closed.set()
        self._transport = None
        p = self._pending
        if p is not None:
            err = LinkLost(Msg("{port}: port closed during {command}{error}", port=self.name,
                               command=shown(p.command), error=f": {exc}" if exc else ""))
            if not p.future.done():
                p.future.set_exception(err)
            if p.prompt and not p.prompt.done():
                p.prompt.set_exception(err)
        self._on_lost(exc)

    # --- requests ---------------------------------------------------------------------------
    async def command(self, cmd: str, *, timeout: float = 5.0, payload: bytes | None = None,
                      check: bool = True) -> Response:
        """Send ``cmd`` and wait for its final result; with ``payload`` answer the ``> `` prompt.

        A caller that is cancelled stops waiting, but the exchange on the wire runs to its end
        (its final result, or its time-out) before the next command is written: a command
        written into an SMS prompt would become the message's text, and a final result still
        on its way would be taken for the next command's answer. A payload not yet written
        when its caller gave up is never written: the prompt is cancelled with ESC."""
        loop = asyncio.get_running_loop()
        pending = _Pending(cmd, _expected_prefix(cmd), loop.create_future(),
                           loop.create_future() if payload is not None else None)
        exchange = loop.create_task(self._exchange(pending, timeout, payload))
        exchange.add_done_callback(_retrieved)
        try:
            final = await asyncio.shield(exchange)
        except asyncio.CancelledError:
            pending.abandoned = True
            raise
        resp = Response(cmd, final, pending.lines)
        if check and final != "OK" and not final.startswith("CONNECT"):
            raise ATError(cmd, final, pending.lines)
        return resp

    async def _exchange(self, pending: _Pending, timeout: float, payload: bytes | None) -> str:
        cmd = pending.command
        async with self._lock:
            if pending.abandoned:  # given up while waiting its turn: never written
                raise asyncio.CancelledError
            loop = asyncio.get_running_loop()
            wait = self._quiet_until - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._transport is None or self.lost:
                raise LinkLost(Msg("{port}: port is not open", port=self.name))
            self._pending = pending
            try:
                self._write(cmd.encode("ascii") + b"\r")
                if pending.prompt is not None:
                    # The module answers with the prompt, or refuses at once with a final code.
                    await asyncio.wait({pending.prompt, pending.future}, timeout=timeout,
                                       return_when=asyncio.FIRST_COMPLETED)
                    if pending.prompt.done():
                        pending.prompt.result()  # raises LinkLost when the port went away
                        # ESC: the module leaves the prompt without sending (27.005 3.5.1)
                        self._write(b"\x1b" if pending.abandoned else payload + b"\x1a")
                    elif not pending.future.done():
                        self._write(b"\x1b")  # clear a stuck prompt
                        self._quiet_until = loop.time() + 0.5
                        raise ATTimeout(Msg("{command}: no '> ' prompt in {seconds}s",
                                               command=shown(cmd), seconds=f"{timeout:g}"))
                try:
                    final = await asyncio.wait_for(asyncio.shield(pending.future), timeout)
                except asyncio.TimeoutError:
                    # Its answer may still be on the way: let it arrive and be dropped.
                    self._quiet_until = loop.time() + 0.5
                    junk = Msg("; {lines} unrecognised line(s) instead, noise on the line or a "
                               "wrong baud rate?", lines=len(pending.lines)) if pending.lines else ""
                    raise ATTimeout(Msg("{command}: no answer in {seconds}s{junk}",
                                        command=shown(cmd), seconds=f"{timeout:g}",
                                        junk=junk)) from None
            finally:
                self._pending = None
            return final

    def interrupt(self) -> None:
        """Give up the exchange on the wire now (a reset must not wait behind a 40 s USSD on a
        module that answers garbage): it fails with ATTimeout, a prompt it left open is
        cancelled with ESC, and answers still on their way are dropped."""
        p = self._pending
        if p is None or p.future.done():
            return
        err = ATTimeout(Msg("{command}: interrupted for a reset", command=shown(p.command)))
        if p.prompt is not None and not p.prompt.done():
            p.prompt.set_exception(err)
            p.prompt.exception()  # retrieved: the exchange reads the future's failure
            if self._transport is not None:
                self._write(b"\x1b")
        p.future.set_exception(err)
        p.future.exception()  # retrieved here; its exchange still raises it to its caller
        self._quiet_until = asyncio.get_running_loop().time() + 0.5

    def abort_in_flight(self) -> None:
        """Any character aborts a dial in progress (V.250); used to hang up during ``ATD``."""
        if self._pending is not None and self._pending.command.upper().startswith("ATD"):
            self._write(b"\r")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def aclose(self, timeout: float = 2.0) -> None:
        """Close and wait until the transport has let go of the port."""
        if self._transport is not None and not self.lost:
            self._transport.close()
            try:
                await asyncio.wait_for(self.closed.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def _write(self, data: bytes) -> None:
        if self._transport is None:
            raise LinkLost(Msg("{port}: port is not open", port=self.name))
        if _wire.isEnabledFor(TRACE):
            _wire.log(TRACE, "%s tx %r", self.name, data)
        self._transport.write(data)

    # --- classification ---------------------------------------------------------------------
    def _dispatch(self, item: object) -> None:
        p = self._pending
        if item is PROMPT:
            if p is not None and p.prompt is not None and not p.prompt.done():
                p.prompt.set_result(True)
            return
        line = item  # type: ignore[assignment]
        assert isinstance(line, str)
        if self._two_line is not None:
            first, self._two_line = self._two_line, None
            self._on_urc(first, line)
            return
        if p is not None and line.upper() == p.command.upper():
            return  # echo
        if p is not None and p.expect and line.startswith(p.expect):
            p.lines.append(line)
            return
        if line.startswith(self._urc_prefixes):
            if line.startswith(TWO_LINE_URCS):
                self._two_line = line
            else:
                self._on_urc(line, None)
            return
        if line in CALL_END_CODES and p is not None and \
                not p.command.upper().startswith(("ATD", "ATA", "ATO")):
            self._on_urc(line, None)  # a call's end crossing another command: not its answer
            return
        if is_final(line):
            if p is not None and not p.future.done():
                p.future.set_result(line)
            elif line in CALL_END_CODES:
                self._on_urc(line, None)
            else:
                self.stale_finals += 1
                log.debug("at_stale_final", port=self.name, line=line)
            return
        if p is not None:
            p.lines.append(line)
        else:
            self._on_urc(line, None)


_NUMBER_RE = re.compile(r'^(ATD)\+?[0-9*#]+|^(AT\+CMGS=")[^"]*', re.I)


def shown(cmd: str) -> str:
    """The command as an error message may name it: the number a dial or a text-mode SMS was
    for is personal data (these messages reach logs and pages), so it is left out."""
    return _NUMBER_RE.sub(lambda m: (m.group(1) or m.group(2)) + "…", cmd, count=1)


def _retrieved(task: asyncio.Task) -> None:
    """An exchange whose caller gave up ends unheard: its failure is not an unhandled one."""
    if not task.cancelled():
        task.exception()


def _expected_prefix(cmd: str) -> str | None:
    """``AT+CREG?`` expects ``+CREG:``; ``AT^SYSINFO`` expects ``^SYSINFO:``."""
    body = cmd[2:] if cmd[:2].upper() == "AT" else cmd
    m = re.match(r"^([+^][A-Za-z]+)", body)
    return f"{m.group(1).upper()}:" if m else None
