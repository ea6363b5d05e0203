"""The field-service console on a serial port of the running appliance (115200 8N1).

Login is by service PIN; after ``max_wrong_pins`` wrong PINs the console locks for
``lockout_s``. Once in, the commands of :mod:`dialbox.console.commands` run against the same
appliance the web admin shows; every command that changes something is audited.
"""
from __future__ import annotations

import asyncio
from pathlib import Path, PurePath

import structlog

from controller import audit
from dialbox.config import ConsoleSettings
from dialbox.console.lineedit import CTRL_C, LineEditor
from dialbox.console.pin import PinStore
from firmware.errors import N_, Msg, UserError
from firmware.seriallink import open_link

log = structlog.get_logger(__name__)

PROMPT = "dialbox> "
WHO = "field-service"
IDLE_LOGOUT_S = 900.0
REOPEN_S = 2.0


class _Link(asyncio.Protocol):
    """Bytes from the serial port into a queue; the session reads them in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.Event()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.connected.set()

    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    def connection_lost(self, exc) -> None:
        self.queue.put_nowait(None)


class Console:
    """One serial console; ``serve()`` runs until cancelled, reopening the port if it goes."""

    def __init__(self, app, settings: ConsoleSettings, data: Path) -> None:
        self.app = app
        self.settings = settings
        self.device = settings.device or ""
        self.pins = PinStore(data)
        self.wrong = 0
        self.locked_until = 0.0  # clock time
        self.logged_in = False
        self.editor = LineEditor(PROMPT)
        self._link: _Link | None = None
        self._ask: asyncio.Future | None = None  # a command waiting for a typed answer

    @property
    def source(self) -> str:
        return f"console:{self.device}"

    async def serve(self) -> None:
        while True:
            link = _Link()
            try:
                await open_link(self.device, lambda: link, baud=self.settings.baud)
                await asyncio.wait_for(link.connected.wait(), 5)
            except (UserError, asyncio.TimeoutError) as exc:
                log.warning("console_port_unavailable", device=self.device, error=str(exc))
                await asyncio.sleep(REOPEN_S)
                continue
            self._link = link
            log.info("console_open", device=self.device)
            try:
                await self._session(link)
            finally:
                if link.transport is not None:
                    link.transport.close()
                self._link = None
                self.logged_in = False
            log.warning("console_port_lost", device=self.device)
            await asyncio.sleep(REOPEN_S)

    def write(self, text: str) -> None:
        """Text to the terminal; lines end with CR LF as a terminal wants."""
        if self._link is not None and self._link.transport is not None:
            self._link.transport.write(text.replace("\r\n", "\n").replace("\n", "\r\n").encode())

    def say(self, *lines: str) -> None:
        for line in lines:
            self.write(line + "\n")

    async def ask(self, prompt: str, *, hidden: bool = False) -> str | None:
        """Prompt and wait for a line (None when the person pressed Ctrl-C)."""
        self.write_raw(self.editor.start(prompt, hidden=hidden))
        self._ask = asyncio.get_running_loop().create_future()
        try:
            answer = await self._ask
        finally:
            self._ask = None
        return None if answer == CTRL_C else answer

    def write_raw(self, data: bytes) -> None:
        if self._link is not None and self._link.transport is not None:
            self._link.transport.write(data)

    async def audit(self, *, action: str, obj: str, key: str = "", before=None,
                    after=None) -> None:
        """One audit entry, committed on the store's writer (never on the event loop)."""
        await self.app.store.run(audit.record, who=WHO, action=action, obj=obj, key=key,
                                 before=before, after=after, source=self.source)

    # --- the session ------------------------------------------------------------------------
    async def _session(self, link: _Link) -> None:
        from dialbox.console.commands import banner
        self.say("", *banner(self.app))
        self.write_raw(self.editor.start("PIN: ", hidden=True))
        worker: asyncio.Task | None = None
        try:
            while True:
                data = await link.queue.get()
                if data is None:
                    return
                echo, lines = self.editor.feed(data)
                self.write_raw(echo)
                for line in lines:
                    if self._ask is not None and not self._ask.done():
                        self._ask.set_result(line)
                    elif worker is not None and not worker.done():
                        if line == CTRL_C and self.logged_in:  # stop the command running
                            worker.cancel()
                            await asyncio.gather(worker, return_exceptions=True)
                            self.say("stopped")
                            self.write_raw(self.editor.start(PROMPT))
                        # anything else typed while a command runs is dropped
                    else:
                        worker = asyncio.get_running_loop().create_task(self._line(line))
        finally:
            if worker is not None and not worker.done():
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)

    async def _line(self, line: str) -> None:
        clock = self.app.clock
        if not self.logged_in:
            await self._login(line)
            return
        if clock.now() - self._active > IDLE_LOGOUT_S * clock.scale:
            self.logged_in = False
            self.say("logged out after 15 minutes without input")
            self.write_raw(self.editor.start("PIN: ", hidden=True))
            return
        self._active = clock.now()
        if line != CTRL_C:
            self.editor.remember(line)
            from dialbox.console.commands import run_command
            try:
                keep = await run_command(self, line)
            except UserError as exc:
                self.say(f"error: {exc}")
                keep = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a console that dies is worse than a failed command
                log.exception("console_command_failed", command=line.split(" ")[0])
                self.say(f"error: the command failed ({type(exc).__name__}); see 'show log'")
                keep = True
            if not keep:
                self.logged_in = False
                self.say("logged out")
                self.write_raw(self.editor.start("PIN: ", hidden=True))
                return
        self.write_raw(self.editor.start(PROMPT))

    async def _login(self, pin: str) -> None:
        clock = self.app.clock
        left = self.locked_until - clock.now()
        if left > 0:
            self.say(f"console locked after {self.settings.max_wrong_pins} wrong PINs: "
                     f"try again in {int(left / clock.scale) + 1} s")
            self.write_raw(self.editor.start("PIN: ", hidden=True))
            return
        if pin == CTRL_C or not pin.strip():
            self.write_raw(self.editor.start("PIN: ", hidden=True))
            return
        if await asyncio.to_thread(self.pins.verify, pin):
            self.wrong = 0
            self.logged_in = True
            self._active = clock.now()
            await self.audit(action="login", obj="console")
            log.info("console_login", device=self.device)
            if self.pins.one_time and not await self._replace_one_time_pin():
                self.logged_in = False
                self.write_raw(self.editor.start("PIN: ", hidden=True))
                return
            self.say("logged in. Type 'help' for the commands.")
            self.write_raw(self.editor.start(PROMPT))
            return
        self.wrong += 1
        await self.audit(action="login_failed", obj="console",
                         after={"wrong_in_a_row": self.wrong})
        if self.wrong >= self.settings.max_wrong_pins:
            self.locked_until = clock.now() + self.settings.lockout_s * clock.scale
            self.wrong = 0
            await self.audit(action="locked", obj="console",
                             after={"seconds": self.settings.lockout_s})
            log.warning("console_locked", device=self.device, seconds=self.settings.lockout_s)
            self.say(f"wrong PIN. The console is locked for {int(self.settings.lockout_s)} s.")
        else:
            self.say(f"wrong PIN ({self.settings.max_wrong_pins - self.wrong} "
                     "tries left before the console locks)")
        self.write_raw(self.editor.start("PIN: ", hidden=True))

    async def _replace_one_time_pin(self) -> bool:
        """The first-start PIN works once: the person chooses their own at the first login."""
        self.say("This was the one-time PIN written at first start: choose a new PIN "
                 "(6 to 12 digits).")
        while True:
            new = await self.ask("new PIN: ", hidden=True)
            if new is None:
                return False
            again = await self.ask("again: ", hidden=True)
            if again is None:
                return False
            if new != again:
                self.say("the two PINs differ; once more")
                continue
            try:
                await asyncio.to_thread(self.pins.set, new)
            except UserError as exc:
                self.say(f"error: {exc}")
                continue
            await self.audit(action="pin_set", obj="console")
            self.say("new PIN saved; the one-time PIN no longer works.")
            return True


async def start(app, runtime, report) -> None:
    """Runtime part: the console on its port, when one is configured."""
    cfg = runtime.config
    data = Path(cfg.data)
    pin = PinStore(data).ensure()
    if pin is not None:
        runtime.extras["initial_console_pin"] = data / "initial-console-pin"
    if not cfg.console.device:
        report.add(N_("console"), True, N_("no console port configured"))
        return
    console = Console(app, cfg.console, data)
    runtime.extras["console"] = console
    runtime.supervisor.run(N_("console"), console.serve)
    port = PurePath(cfg.console.device)  # pages show the device's name (ttyS0)
    report.add(N_("console"), True, Msg("{port} at {baud} 8N1; one-time PIN in "
                                        "initial-console-pin", port=port, baud=cfg.console.baud)
               if pin else Msg("{port} at {baud} 8N1", port=port, baud=cfg.console.baud))
