"""A simulated GSM modem on a pseudo-terminal, answering AT commands byte for byte.

The real driver opens the pty's slave end through pyserial, as it would a USB modem. Dialects
change what the modem says about calls (``+CLCC`` URCs, Huawei ``^ORIG/^CONF/^CONN/^CEND``, or
only final result codes with ``+COLP``); debtors come from :class:`Population`; faults are
injected on command so the driver's recovery can be tested against the wire.
"""
from __future__ import annotations

import asyncio
import os
import random
import re
import termios
import tty
from dataclasses import dataclass, field

import structlog

from firmware.clock import Clock
from firmware.gsm import pdu as smspdu
from firmware.gsm.dialects import SERIAL_VOICE, Dialect
from firmware.sim import audioport
from firmware.sim.audioport import AudioPort, CallVoice, keep_window, trim
from firmware.sim.population import Fate, Population

log = structlog.get_logger(__name__)

# Q.850 cause per fate, as the network reports it at release.
FATE_CAUSE = {"answer": 16, "busy": 17, "no_answer": 19, "unreachable": 20, "rejected": 21,
              "invalid": 1}
CAUSE_TEXT = {16: "Normal call clearing", 17: "User busy", 19: "No answer",
              20: "Subscriber absent", 21: "Call rejected", 1: "Unassigned number",
              31: "Normal, unspecified"}
KEEP_COMMANDS = 10_000  # the last AT command lines a module remembers (for tests)

FAULTS = ("silent", "garbage", "reboot", "sim_removed", "network_lost", "cme_error", "vanish",
          "audio_vanish")


@dataclass
class SimCall:
    number: str
    fate: Fate
    direction: int = 0  # 0 mobile originated, 1 terminated
    stat: int = 2  # +CLCC stat: 0 active, 2 dialing, 3 alerting, 4 incoming, 6 ended
    answered_at: float | None = None
    task: asyncio.Task | None = None
    ended: bool = False
    ddsetex: bool = False  # Huawei: AT^DDSETEX=2 put this call's voice on the audio port
    record: "CallRecord | None" = None
    presentation: str = "allowed"  # what the called party's caller ID shows: allowed, restricted


@dataclass
class CallRecord:
    """What a simulated debtor did: the oracle tests compare with the box's records."""

    number: str
    fate: str
    ring_s: float
    talk_s: float
    ended_by: str = ""  # debtor, box, network
    direction: str = "outbound"
    voice: CallVoice | None = None  # the debtor's signal and what he heard, when audio ran
    dialed: str = ""  # the ATD argument as received, e.g. "+79161234567i;"
    presentation: str = "allowed"  # the caller ID the network gave the called party
    caller: str | None = None  # the number shown to him (None when restricted)
    at: float = 0.0  # wall clock: when the ATD arrived
    ended_at: float | None = None  # wall clock: when the call ended (None: still going)


@dataclass
class _State:
    echo: bool = True
    cmee: int = 0
    clip: bool = False
    clcc: bool = False
    colp: bool = False
    cmgf: int = 0
    cfun: int = 1
    cscs: str = "GSM"
    csmp_fo: int = 17
    creg: int = 0  # +CREG / +CGREG report modes (2: with location)
    cgreg: int = 0
    cops_format: int = 0  # 0 long name, 1 short name, 2 numeric
    cpcmreg: int = 0  # SIM7600: PCM over the USB audio port
    cpcmfrm: int = 0  # SIM7600: 0 8 kHz, 1 16 kHz
    clir: int = 0  # +CLIR <n>: 0 by subscription, 1 invoke (hide), 2 suppress (show)


# Russian networks a simulated SIM can belong to (MCC+MNC, the name AT+COPS gives), and the
# USSD code each answers with the balance.
NETWORKS = (("25002", "MegaFon"), ("25001", "MTS RUS"), ("25099", "Beeline"), ("25020", "Tele2"))
BALANCE_CODES = {"25002": "*100#", "25001": "*100#", "25099": "*102#", "25020": "*105#"}


class SimModem:
    """One simulated module; ``start()`` returns the pty path the driver opens."""

    def __init__(self, name: str, dialect: Dialect, population: Population, clock: Clock, *,
                 imei: str | None = None, seed: int | None = None, msisdn: str | None = "",
                 clir_mode: int = 4, network: tuple[str, str] = NETWORKS[0]) -> None:
        self.name = name
        # The SIM's home network (MCC+MNC, name): its IMSI starts with it, AT+COPS names it, and
        # it answers only its own balance USSD code (BALANCE_CODES), as a real network does.
        self.mcc_mnc, self.network_name = network
        self.dialect = dialect
        self.population = population
        self.clock = clock
        self._rng = random.Random(seed)
        self.imei = imei or "86" + "".join(str(self._rng.randrange(10)) for _ in range(13))
        self.imsi = self.mcc_mnc + "".join(str(self._rng.randrange(10)) for _ in range(10))
        self.iccid = "897010" + "".join(str(self._rng.randrange(10)) for _ in range(13))
        # The SIM's own number as AT+CNUM reads it ("": made up from the seed; None: not
        # written on the SIM, as with many operators).
        self.msisdn = ("+7999" + "".join(str(self._rng.randrange(10)) for _ in range(7))
                       if msisdn == "" else msisdn)
        # The subscription's CLIR (+CLIR <m>): 0 not provisioned, 1 permanent (always
        # hidden), 2 unknown, 3 temporary mode restricted, 4 temporary mode allowed.
        self.clir_mode = clir_mode
        self.st = _State()
        self.sim_present = True
        self.registered = True
        self.rssi = 18
        self.faults: set[str] = set()
        self.ceer_supported = True
        self.sim_urc_delay_s = 0.0  # how long after a SIM removal the module reports it
        self.commands: list[str] = []  # every command line received, for tests
        self.records: list[CallRecord] = []
        self.sms_sent: list[smspdu.Submit] = []  # what the driver sent, decoded
        self.sms_text_sent: list[tuple[str, str]] = []  # text mode: (number, text)
        self.sms_undeliverable: set[str] = set()  # numbers whose reports say "failed"
        # The operator refuses this SIM's messages with this cause (+CMS ERROR), as an
        # anti-spam filter does after a burst; None: it takes them.
        self.sms_refusal: int | None = None
        self.sms_report_delay_s = 2.0
        self.sms_submit_s = 0.0  # how long the network takes to accept a submitted SMS
        self._inbox: dict[int, str] = {}  # SIM storage index -> DELIVER PDU hex
        self.balance_text = "Баланс: 123,45 р."
        self.smsc = "+79262000331"  # the SIM's SMS centre (MegaFon Moscow)
        self.ussd_requests: list[str] = []
        self.path: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._tcp: asyncio.Transport | None = None
        self._server: asyncio.AbstractServer | None = None
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._call: SimCall | None = None
        self._last_cause = 16
        self._sms_len: int | None = None
        self._booting = False
        self._tasks: set[asyncio.Task] = set()
        self._mr = self._rng.randrange(256)
        self.audio = AudioPort() if dialect.voice in SERIAL_VOICE else None
        self.audio_path: str | None = None
        self.qpcmv: tuple[int, int] = (0, 0)  # EC25: (enabled, port mode); kept over calls
        self.inbound_records: list[CallRecord] = []
        self._voice: CallVoice | None = None
        self._seq = 0

    # --- life cycle -------------------------------------------------------------------------
    async def start(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._on_readable)
        if self.audio is not None:
            self.audio_path = await self.audio.open_pty()
        return self.path

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._call and self._call.task:
            self._call.task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._voice is not None:
            self._voice.halt()
            self._voice.close()
            self._voice = None
        if self.audio is not None:
            await self.audio.close()
        self._close_fds()
        if self._tcp is not None:
            self._tcp.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _close_fds(self) -> None:
        loop = asyncio.get_running_loop()
        if self._master is not None:
            loop.remove_reader(self._master)
            loop.remove_writer(self._master)
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    # --- faults -----------------------------------------------------------------------------
    def inject(self, fault: str) -> None:
        """Start a fault: silent, garbage, reboot, sim_removed, network_lost, cme_error, vanish."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        if fault == "reboot":
            self._spawn(self._reboot())
            return
        if fault == "vanish":
            self._drop_call("network", silent=True)
            self._close_fds()
            return
        if fault == "audio_vanish":  # the USB audio interface drops off the bus mid-call
            if self.audio is not None:
                self._spawn(self.audio.close())
            return
        if fault == "sim_removed":
            # As real modules: the call ends first (AT+CEER then says nothing useful), the
            # SIM-state report comes seconds later, registration is lost later still; AT+CPIN?
            # answers +CME ERROR: 10 at once.
            self.sim_present = False
            self._drop_call("network")
            self._urc_later(self.sim_urc_delay_s, self.dialect.sim_removed_urc,
                            lambda: not self.sim_present)
            self._urc_later(self.sim_urc_delay_s + 10.0, "+CREG: 0",
                            lambda: not self.sim_present and self.st.creg > 0)
        if fault == "network_lost":
            self.registered = False
            self._drop_call("network")
            self._urc("+CREG: 0")
        self.faults.add(fault)

    def clear(self, fault: str | None = None) -> None:
        """End one fault, or all."""
        for f in ([fault] if fault else list(self.faults)):
            self.faults.discard(f)
            if f == "sim_removed":
                self.sim_present = True
                self._urc("+CPIN: READY")
            if f == "network_lost":
                self.registered = True
                self._urc("+CREG: 1")

    def ring_inbound(self, caller: str) -> None:
        """An inbound call from ``caller`` (a debtor calling back). While a call is up it waits
        behind it, as on a real module: no RING and no +CLIP, only the +CLCC list shows it
        (call 2, stat 5 "waiting"); the caller gives up after 20 s."""
        if self._call is not None and not self._call.ended:
            record = CallRecord(caller, "waiting", 0.0, 0.0, direction="inbound",
                                ended_by="debtor")
            self.inbound_records.append(record)
            keep_window(self.inbound_records)
            kind = 145 if caller.startswith("+") else 129
            if self.dialect.call_progress == "clcc" and self.st.clcc:
                self._urc(f'+CLCC: 2,1,5,0,0,"{caller}",{kind}')

            async def gives_up() -> None:
                await self.clock.sleep(20.0)
                if self.dialect.call_progress == "clcc" and self.st.clcc:
                    self._urc(f'+CLCC: 2,1,6,0,0,"{caller}",{kind}')
            self._spawn(gives_up())
            return
        fate = Fate("answer", 0.0, self.population.fate().talk_s or 30.0)
        self._call = SimCall(caller, fate, direction=1, stat=4)
        self._call.record = CallRecord(caller, "inbound", 0.0, 0.0, direction="inbound")
        self.inbound_records.append(self._call.record)
        keep_window(self.inbound_records)
        self._call.task = self._spawn(self._inbound(self._call))

    # --- byte I/O ---------------------------------------------------------------------------
    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the module on TCP instead of a pty, as a gateway's ser2net bridge does.

        The audio port, when the module has one, listens on the next port (any port when 0).
        """
        loop = asyncio.get_running_loop()
        modem = self

        class _Conn(asyncio.Protocol):
            def connection_made(self, transport) -> None:
                modem._tcp = transport

            def data_received(self, data: bytes) -> None:
                modem._on_bytes(data)

            def connection_lost(self, exc) -> None:
                modem._tcp = None

        self._server = await loop.create_server(_Conn, host, port)
        port = self._server.sockets[0].getsockname()[1]
        self.path = f"socket://{host}:{port}"
        if self.audio is not None:
            self.audio_path = await self.audio.open_tcp(host, port + 1 if port else 0)
        return self.path

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)  # type: ignore[arg-type]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._on_bytes(data)

    def _on_bytes(self, data: bytes) -> None:
        if "silent" in self.faults or self._booting:
            return
        if self._sms_len is not None:
            self._sms_bytes(data)
            return
        if self._call and self._call.task and self.dialect.call_progress == "final" \
                and self._call.stat in (2, 3) and self._call.direction == 0:
            # V.250: any character aborts a dial in progress.
            self._end_call(self._call, "box", final="NO CARRIER")
            return
        if self.st.echo:
            self._send_raw(data)
        self._inbuf += data
        while True:
            idx = self._inbuf.find(b"\r")
            if idx < 0:
                break
            raw = bytes(self._inbuf[:idx]).replace(b"\n", b"")
            del self._inbuf[:idx + 1]
            line = raw.decode("ascii", "replace").strip()
            if line:
                self._command(line)
                if self._sms_len is not None:
                    rest, self._inbuf = bytes(self._inbuf), bytearray()
                    if rest:
                        self._sms_bytes(rest)
                    break

    def _send_raw(self, data: bytes) -> None:
        if self._tcp is not None:
            self._tcp.write(data)
            return
        if self._master is None:
            return
        self._outbuf += data
        self._flush()

    def _flush(self) -> None:
        if self._master is None:
            return
        loop = asyncio.get_running_loop()
        try:
            n = os.write(self._master, self._outbuf)
            del self._outbuf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._outbuf.clear()
            return
        if self._outbuf:
            loop.add_writer(self._master, self._on_writable)

    def _on_writable(self) -> None:
        asyncio.get_running_loop().remove_writer(self._master)  # type: ignore[arg-type]
        self._flush()

    def _line(self, text: str) -> None:
        if "garbage" in self.faults:
            # A noisy line or a wrong baud rate: what comes out is no longer AT.
            n = len(text) + 4
            self._send_raw(bytes(self._rng.choice(b"\x80\xfe?#~\x11 ") for _ in range(n))
                           + b"\r\n")
            return
        self._send_raw(b"\r\n" + text.encode("ascii") + b"\r\n")

    def _urc(self, text: str) -> None:
        if "silent" not in self.faults and not self._booting:
            self._line(text)

    def _urc_later(self, delay_s: float, text: str, still) -> None:
        async def later() -> None:
            await self.clock.sleep(delay_s)
            if still():
                self._urc(text)
        self._spawn(later())

    def _ok(self) -> None:
        self._line("OK")

    def _error(self, cme: int | None = None) -> None:
        if cme is not None and self.st.cmee == 1:
            self._line(f"+CME ERROR: {cme}")
        elif cme is not None and self.st.cmee == 2:
            self._line(f"+CME ERROR: {_CME_TEXT.get(cme, 'unknown')}")
        else:
            self._line("ERROR")

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- commands ---------------------------------------------------------------------------
    def _command(self, line: str) -> None:
        self.commands.append(line)
        trim(self.commands, KEEP_COMMANDS)
        up = line.upper()
        if not up.startswith("AT"):
            self._line("ERROR")
            return
        if "cme_error" in self.faults and up != "AT":
            self._error(100)
            return
        body = line[2:]
        bu = body.upper()
        if bu.endswith("=?") and bu[:-2] in _TEST_FORMS:  # 27.007 test forms: what is supported
            answer = _TEST_FORMS[bu[:-2]]
            if answer:
                self._line(answer)
            self._ok()
            return
        handler = _EXACT.get(bu)
        if handler:
            handler(self)
            return
        for prefix, fn in _PREFIX:
            if bu.startswith(prefix):
                fn(self, body[len(prefix):])
                return
        self._line("ERROR")

    def _set_flag(self, attr: str, arg: str) -> None:
        if arg.startswith("="):
            try:
                setattr(self.st, attr, int(arg[1:].split(",")[0]))
            except ValueError:
                self._line("ERROR")
                return
            self._ok()
        elif arg == "?":
            self._line(f"+{attr.upper()}: {int(getattr(self.st, attr))}")
            self._ok()
        else:
            self._line("ERROR")

    def _atz(self) -> None:
        self.st = _State()
        self._ok()

    def _cpin(self, arg: str) -> None:
        if not self.sim_present:
            self._error(10)
        else:
            self._line("+CPIN: READY")
            self._ok()

    def _creg(self, arg: str, key: str = "creg") -> None:
        """``+CREG``/``+CGREG``: circuit and packet registration, with location in mode 2."""
        name = "+" + key.upper()
        if arg == "?":
            stat = 1 if self.registered and self.sim_present else 0
            n = getattr(self.st, key)
            where = ',"1A2B","0000C3D4"' if n == 2 and stat else ""
            self._line(f"{name}: {n},{stat}{where}")
            self._ok()
        elif arg.replace(" ", "") in ("=0", "=1", "=2"):
            setattr(self.st, key, int(arg.strip()[-1]))
            self._ok()
        else:
            self._error(3) if arg.startswith("=") else self._line("ERROR")

    def _csca(self, arg: str) -> None:
        """The SMS centre address stored on the SIM."""
        m = re.fullmatch(r'=\s*"(\+?[0-9]{3,20})"\s*(?:,\s*(\d+))?', arg)
        if arg == "?":
            kind = 145 if self.smsc.startswith("+") else 129
            self._line(f'+CSCA: "{self.smsc}",{kind}')
            self._ok()
        elif m:
            self.smsc = m.group(1)
            self._ok()
        else:
            self._line("+CMS ERROR: 304" if arg.startswith("=") else "ERROR")

    def _csq(self, arg: str) -> None:
        self._line(f"+CSQ: {self.rssi if self.registered else 99},0")
        self._ok()

    def _cops(self, arg: str) -> None:
        if arg == "?":
            fmt = self.st.cops_format
            name = (self.network_name, self.network_name, self.mcc_mnc)[fmt]
            act = ",7" if self.dialect.voice in ("sim7600-cpcmreg", "ec25-qpcmv") else ""
            self._line(f'+COPS: 0,{fmt},"{name}"{act}' if self.registered else "+COPS: 0")
            self._ok()
            return
        m = re.fullmatch(r"=\s*([0-4])\s*(?:,\s*([0-2]))?.*", arg)
        if not m:
            self._line("ERROR")
            return
        if m.group(1) == "3" and m.group(2) is not None:
            self.st.cops_format = int(m.group(2))
        self._ok()

    def _info(self, text: str):
        def reply(self: "SimModem", *_args) -> None:
            self._line(text)
            self._ok()
        return reply

    def _cimi(self, *_args) -> None:
        if not self.sim_present:
            self._error(10)
            return
        self._line(self.imsi)
        self._ok()

    def _ccid(self, *_args) -> None:
        if not self.sim_present:
            self._error(10)
            return
        prefix = {"AT+CCID": "", "AT+CICCID": "+ICCID: ", "AT+QCCID": "+QCCID: ",
                  "AT^ICCID?": "^ICCID: "}.get(self.dialect.iccid, "")
        self._line(prefix + self.iccid)
        self._ok()

    def _ceer(self, *_args) -> None:
        if not self.ceer_supported:  # some firmware has no AT+CEER
            self._line("ERROR")
            return
        self._line(f"+CEER: {CAUSE_TEXT.get(self._last_cause, 'Normal, unspecified')}")
        self._ok()

    def _cfun(self, arg: str) -> None:
        if arg.replace(" ", "") in ("=1,1", "=1,1\r"):
            self._ok()
            self._spawn(self._reboot())
        elif arg.startswith("="):
            self._ok()
        else:
            self._line(f"+CFUN: {self.st.cfun}")
            self._ok()

    def _clcc_list(self, arg: str) -> None:
        if arg.startswith("="):
            self._set_flag("clcc", arg)
            return
        c = self._call
        if c and not c.ended:
            self._line(_clcc(c))
        self._ok()

    def _cmgs(self, arg: str) -> None:
        if not arg.startswith("="):
            self._line("ERROR")
            return
        if self.st.cmgf == 1:
            m = re.match(r'=\s*"([^"]+)"', arg)
            if not m:
                self._line("+CMS ERROR: 304")
                return
            self._sms_len = -1  # text mode: the text runs to Ctrl-Z
            self._sms_number = m.group(1)
            self._sms_buf = bytearray()
            self._send_raw(b"\r\n> ")
            return
        try:
            self._sms_len = int(arg[1:].split(",")[0].strip('"'))
        except ValueError:
            self._line("ERROR")
            return
        self._sms_buf = bytearray()
        self._send_raw(b"\r\n> ")

    def _sms_bytes(self, data: bytes) -> None:
        self._sms_buf += data
        if b"\x1b" in self._sms_buf:
            self._sms_len = None
            self._ok()
            return
        idx = self._sms_buf.find(b"\x1a")
        if idx < 0:
            return
        body = bytes(self._sms_buf[:idx]).strip()
        length, self._sms_len = self._sms_len, None
        if not self.registered:
            self._line("+CMS ERROR: 331")
            return
        if self.sms_refusal is not None:
            self._line(f"+CMS ERROR: {self.sms_refusal}")
            return
        if length == -1:
            self._text_mode_sms(body)
            return
        try:
            submit = smspdu.decode_submit(body.decode("ascii"), length=length)
        except (smspdu.PduError, UnicodeDecodeError):
            self._line("+CMS ERROR: 304")
            return
        self.sms_sent.append(submit)
        trim(self.sms_sent, audioport.KEEP_RECORDS)
        self._mr = (self._mr + 1) % 256
        if self.sms_submit_s > 0:
            self._spawn(self._submitted(self._mr, submit))
            return
        self._accepted(self._mr, submit)

    async def _submitted(self, mr: int, submit) -> None:
        await self.clock.sleep(self.sms_submit_s)  # the module waits for the network's RP-ACK
        self._accepted(mr, submit)

    def _accepted(self, mr: int, submit) -> None:
        self._line(f"+CMGS: {mr}")
        self._ok()
        if submit.status_report_requested:
            self._spawn(self._status_report(mr, submit.number))

    def _text_mode_sms(self, body: bytes) -> None:
        from firmware.gsm.alphabet import ucs2_from_hex
        try:
            if self.st.cscs == "UCS2":
                number = ucs2_from_hex(self._sms_number)
                text = ucs2_from_hex(body.decode("ascii"))
            else:
                number, text = self._sms_number, body.decode("gsm03.38")
        except (ValueError, UnicodeDecodeError):
            self._line("+CMS ERROR: 304")
            return
        self.sms_text_sent.append((number, text))
        trim(self.sms_text_sent, audioport.KEEP_RECORDS)
        self._mr = (self._mr + 1) % 256
        self._line(f"+CMGS: {self._mr}")
        self._ok()
        if self.st.csmp_fo & 0x20:
            self._spawn(self._status_report(self._mr, number))

    def _cscs(self, arg: str) -> None:
        m = re.match(r'=\s*"(\w+)"', arg)
        if m and m.group(1).upper() in ("GSM", "UCS2", "IRA"):
            self.st.cscs = m.group(1).upper()
            self._ok()
        elif arg == "?":
            self._line(f'+CSCS: "{self.st.cscs}"')
            self._ok()
        else:
            self._line("ERROR")

    def _csmp(self, arg: str) -> None:
        try:
            self.st.csmp_fo = int(arg.lstrip("=").split(",")[0])
        except ValueError:
            self._line("ERROR")
            return
        self._ok()

    async def _status_report(self, mr: int, number: str) -> None:
        await self.clock.sleep(self.sms_report_delay_s)
        from datetime import datetime, timezone
        now = datetime.fromtimestamp(int(self.clock.wall()), timezone.utc)  # the network's time
        status = 0x41 if number.lstrip("+") in {n.lstrip("+") for n in self.sms_undeliverable} \
            else 0x00
        rep = smspdu.encode_status_report(mr, number, status=status, sc_timestamp=now,
                                          discharge_time=now)
        self._urc(f"+CDS: {rep.tpdu_length}")
        self._send_raw(rep.hex.encode("ascii") + b"\r\n")

    def receive_sms(self, sender: str, text: str) -> int:
        """An SMS arrives: stored on the SIM, announced with +CMTI; returns the parts' count."""
        from datetime import datetime, timezone
        now = datetime.fromtimestamp(int(self.clock.wall()), timezone.utc)  # the network's time
        parts = smspdu.encode_deliver(sender, text, timestamp=now)
        for part in parts:
            index = max(self._inbox, default=0) + 1
            self._inbox[index] = part.hex
            self._urc(f'+CMTI: "SM",{index}')
        return len(parts)

    def _cmgr(self, arg: str) -> None:
        try:
            index = int(arg.lstrip("="))
        except ValueError:
            self._line("ERROR")
            return
        pdu_hex = self._inbox.get(index)
        if pdu_hex is None:
            self._line("+CMS ERROR: 321")
            return
        smsc_len = int(pdu_hex[:2], 16)
        self._line(f"+CMGR: 0,,{len(pdu_hex) // 2 - 1 - smsc_len}")
        self._send_raw(pdu_hex.encode("ascii") + b"\r\n")
        self._ok()

    def _cmgl(self, arg: str) -> None:
        """PDU mode listing; every stored message is listed whatever the stat asked (4: all)."""
        for index in sorted(self._inbox):
            pdu_hex = self._inbox[index]
            smsc_len = int(pdu_hex[:2], 16)
            self._line(f"+CMGL: {index},1,,{len(pdu_hex) // 2 - 1 - smsc_len}")
            self._send_raw(pdu_hex.encode("ascii") + b"\r\n")
        self._ok()

    def _cusd(self, arg: str) -> None:
        m = re.match(r'=\s*1\s*,\s*"([^"]*)"', arg)
        if not m:
            self._ok() if arg.strip().startswith("=") else self._line("ERROR")
            return
        from firmware.gsm import ussd
        request = m.group(1)
        if self.dialect.call_progress == "huawei":
            request = ussd.decode_ussd(request, 15, encoding="packed")
        elif self.st.cscs == "UCS2":
            from firmware.gsm.alphabet import ucs2_from_hex
            try:
                request = ucs2_from_hex(request)
            except ValueError:
                self._line("+CME ERROR: 100")
                return
        self.ussd_requests.append(request)
        trim(self.ussd_requests, audioport.KEEP_RECORDS)
        self._ok()
        if request != BALANCE_CODES.get(self.mcc_mnc, "*100#"):
            self._spawn(self._later(0.3, "+CUSD: 4"))  # operation not supported
            return
        reply = self.balance_text.encode("utf-16-be").hex().upper()
        self._spawn(self._later(0.3, f'+CUSD: 0,"{reply}",72'))

    async def _later(self, delay: float, urc: str) -> None:
        await asyncio.sleep(delay)
        self._urc(urc)

    def _cmgd(self, arg: str) -> None:
        try:
            self._inbox.pop(int(arg.lstrip("=").split(",")[0]), None)
        except ValueError:
            self._line("ERROR")
            return
        self._ok()

    # --- calls ------------------------------------------------------------------------------
    def _atd(self, arg: str) -> None:
        asked = arg
        if arg[:1] in ("T", "t", "P", "p"):  # V.250 tone/pulse modifiers: ignored by GSM
            arg = arg[1:]
        if not arg.endswith(";"):
            self._line("NO CARRIER")  # data calls are not served
            return
        # 27.007 6.2: ATD<number>[I|i][G|g]; "I" invokes CLIR (hide), "i" suppresses it (show).
        m = re.fullmatch(r"(\+?[0-9*#]+)([Ii]?)([Gg]?);", arg.strip())
        if m is None:
            self._line("ERROR")
            return
        number, clir = m.group(1), m.group(2)
        if not self.sim_present:
            self._error(10)
            return
        if not self.registered:
            self._line("NO CARRIER")
            self._last_cause = 30
            return
        if self._call is not None and not self._call.ended:
            self._error(3)
            return
        fate = self.population.fate()
        shown = self._presentation(clir)
        self._call = SimCall(number, fate, presentation=shown)
        self.records.append(CallRecord(number, fate.kind, 0.0, 0.0, dialed=asked.strip(),
                                       presentation=shown, at=self.clock.wall(),
                                       caller=self.msisdn if shown == "allowed" else None))
        self._call.record = self.records[-1]
        keep_window(self.records)
        if self.dialect.call_progress != "final":
            self._ok()
        self._call.task = self._spawn(self._outbound(self._call, self.records[-1]))

    def _presentation(self, suffix: str) -> str:
        """The caller ID the network gives the called party for one call (27.007 7.7)."""
        if self.clir_mode == 1:  # permanent CLIR: the subscriber cannot show his number
            return "restricted"
        if suffix:
            return "restricted" if suffix == "I" else "allowed"
        if self.st.clir:
            return "restricted" if self.st.clir == 1 else "allowed"
        return "restricted" if self.clir_mode == 3 else "allowed"

    def _clir(self, arg: str) -> None:
        if arg == "?":
            self._line(f"+CLIR: {self.st.clir},{self.clir_mode}")
            self._ok()
        elif re.fullmatch(r"=[012]", arg):
            self.st.clir = int(arg[1])
            self._ok()
        elif arg == "=?":
            self._line("+CLIR: (0-2)")
            self._ok()
        else:
            self._error(4)

    def _cnum(self, *_args) -> None:
        if not self.sim_present:
            self._error(10)
            return
        if self.msisdn:
            kind = 145 if self.msisdn.startswith("+") else 129
            self._line(f'+CNUM: "","{self.msisdn}",{kind}')
        self._ok()

    def _hangup(self, *_args) -> None:
        c = self._call
        if c is not None and not c.ended:
            self._end_call(c, "box", final=None)
        self._ok()

    def _ata(self, *_args) -> None:
        c = self._call
        if c is None or c.ended or c.direction != 1 or c.stat != 4:
            self._line("NO CARRIER")
            return
        c.stat = 0
        c.answered_at = self.clock.now()
        self._ok()
        self._progress(c, "answered")
        self._update_voice()

    async def _outbound(self, c: SimCall, rec: CallRecord) -> None:
        f = c.fate
        self._progress(c, "dialing")
        await self.clock.sleep(0.5)
        if f.kind in ("invalid", "unreachable"):
            await self.clock.sleep(1.5)
            self._end_call(c, "network", cause=FATE_CAUSE[f.kind])
            return
        c.stat = 3
        self._progress(c, "alerting")
        if f.kind == "busy":
            await self.clock.sleep(1.0)
            self._end_call(c, "debtor", cause=17, final="BUSY")
            return
        if f.kind == "no_answer":
            await self.clock.sleep(f.ring_s)
            rec.ring_s = f.ring_s
            self._end_call(c, "network", cause=19, final="NO ANSWER")
            return
        await self.clock.sleep(f.ring_s)
        rec.ring_s = f.ring_s
        if f.kind == "rejected":
            self._end_call(c, "debtor", cause=21)
            return
        c.stat = 0
        c.answered_at = self.clock.now()
        if self.dialect.call_progress == "final":
            self._line(f'+COLP: "{c.number}",145')
            self._ok()
        self._progress(c, "answered")
        self._update_voice()
        await self.clock.sleep(f.talk_s)
        rec.talk_s = f.talk_s
        self._end_call(c, "debtor", cause=16)

    async def _inbound(self, c: SimCall) -> None:
        for _ in range(10):
            if c.stat != 4:
                break
            self._urc("RING")
            if self.st.clip:
                self._urc(f'+CLIP: "{c.number}",145,"",0,"",0')
            await self.clock.sleep(3.0)
        if c.stat == 4:
            self._end_call(c, "debtor", cause=16)
            return
        await self.clock.sleep(c.fate.talk_s)
        self._end_call(c, "debtor", cause=16)

    def _progress(self, c: SimCall, what: str) -> None:
        mode = self.dialect.call_progress
        if mode == "clcc" and self.st.clcc:
            self._urc(_clcc(c))
        elif mode == "huawei":
            code = {"dialing": "^ORIG:1,0", "alerting": "^CONF:1", "answered": "^CONN:1,0"}.get(what)
            if code:
                self._urc(code)

    def _end_call(self, c: SimCall, by: str, *, cause: int = 16, final: str | None = "NO CARRIER",
                  silent: bool = False) -> None:
        if c.ended:
            return
        answered = c.answered_at is not None
        c.ended = True
        if c.record is not None:
            c.record.ended_at = self.clock.wall()
        self._last_cause = cause
        if self.records and by == "box" and c.direction == 0:
            self.records[-1].ended_by = "box"
            if answered:
                self.records[-1].talk_s = self.clock.now() - c.answered_at  # type: ignore[operator]
        elif self.records and c.direction == 0:
            self.records[-1].ended_by = by
        if c.task and c.task is not asyncio.current_task():
            c.task.cancel()
        c.stat = 6
        self._update_voice()
        if silent:
            return  # the module lost power or its port: it says nothing about the call
        mode = self.dialect.call_progress
        if by == "box" and mode != "final":
            if mode == "clcc" and self.st.clcc:
                self._urc(_clcc(c))
            elif mode == "huawei":
                dur = int(self.clock.now() - c.answered_at) if answered else 0
                self._urc(f"^CEND:1,{dur},104,16")
            return
        if mode == "huawei":
            dur = int(self.clock.now() - c.answered_at) if answered else 0
            self._urc(f"^CEND:1,{dur},104,{cause}")
            return
        if mode == "clcc" and self.st.clcc:
            self._urc(_clcc(c))
        self._urc(final or "NO CARRIER")

    # --- voice on the audio port ------------------------------------------------------------
    def _voice_wanted(self) -> bool:
        c, method = self._call, self.dialect.voice
        if self.audio is None or c is None or c.ended or c.stat != 0:
            return False
        if method == "huawei-ddsetex":
            return c.ddsetex
        if method == "sim7600-cpcmreg":
            return self.st.cpcmreg == 1
        return self.qpcmv == (1, 0)

    def _update_voice(self) -> None:
        """Start or stop carrying the call's audio as the call and the voice command say."""
        c = self._call
        if self._voice_wanted():
            if self._voice is None:
                rate = 16000 if self.dialect.voice == "sim7600-cpcmreg" and self.st.cpcmfrm \
                    else 8000
                self._seq += 1
                self._voice = CallVoice(self.audio, self.clock, f"{self.name}:{self._seq}",
                                        rate=rate, spawn=self._spawn)
                if c is not None and c.record is not None:
                    c.record.voice = self._voice
            self._voice.start()
        elif self._voice is not None:
            self._voice.halt()
            if c is None or c.ended:  # the call is over: its voice goes back to the book
                self._voice.close()
                self._voice = None
                if self.dialect.voice == "sim7600-cpcmreg":
                    self.st.cpcmreg = 0

    def _query(self, arg: str, answer: str) -> None:
        """A setting read with ``?`` and accepted when set."""
        if arg == "?":
            self._line(answer)
            self._ok()
        elif arg.startswith("="):
            self._ok()
        else:
            self._line("ERROR")

    def _vendor(self, arg: str, dialect: str, query: str) -> None:
        """A vendor's own setting: accepted by that vendor's modules only."""
        if self.dialect.name != dialect:
            self._line("ERROR")
        elif arg == "?":
            self._line(query)
            self._ok()
        else:
            self._ok()

    def _voice_setting(self, arg: str, method: str, test: str, query: str) -> str | None:
        """The common part of a voice command: only ``method``'s modules know it; ``=?`` and
        ``?`` are answered here. Returns the set form's value (``"2"``, ``"1,0"``) or None."""
        if self.dialect.voice != method:
            self._line("ERROR")
        elif arg == "=?":
            self._line(test)
            self._ok()
        elif arg == "?" and query:
            self._line(query)
            self._ok()
        elif arg.startswith("="):
            return arg[1:].replace(" ", "")
        else:
            self._line("ERROR")
        return None

    def _ddsetex(self, arg: str) -> None:
        """Huawei: ``AT^DDSETEX=2`` sends this call's voice to the audio port."""
        value = self._voice_setting(arg, "huawei-ddsetex", "^DDSETEX: (2)", "")
        if value is None:
            return
        if value != "2":
            self._line("ERROR")
        elif self._call is None or self._call.ended:
            self._error(3)
        else:
            self._call.ddsetex = True
            self._ok()
            self._update_voice()

    def _cpcmreg(self, arg: str) -> None:
        """SIM7600: ``AT+CPCMREG=1`` once the call is active, ``=0`` at release."""
        value = self._voice_setting(arg, "sim7600-cpcmreg", "+CPCMREG: (0,1)",
                                    f"+CPCMREG: {self.st.cpcmreg}")
        if value is None:
            return
        c = self._call
        if value not in ("0", "1", "0,0", "1,0"):
            self._line("ERROR")
        elif value[0] == "1" and (c is None or c.ended or c.stat != 0):
            self._error(3)  # no active call to take the voice of
        else:
            self.st.cpcmreg = int(value[0])
            self._ok()
            self._update_voice()

    def _cpcmfrm(self, arg: str) -> None:
        """SIM7600: ``AT+CPCMFRM=0`` 8 kHz, ``=1`` 16 kHz frames on the audio port."""
        value = self._voice_setting(arg, "sim7600-cpcmreg", "+CPCMFRM: (0,1)",
                                    f"+CPCMFRM: {self.st.cpcmfrm}")
        if value is None:
            return
        if value in ("0", "1") and not self.st.cpcmreg:
            self.st.cpcmfrm = int(value)
            self._ok()
        else:
            self._line("ERROR")

    def _qpcmv(self, arg: str) -> None:
        """Quectel EC25: ``AT+QPCMV=1,0`` voice over the USB serial port, ``=1,2`` USB audio."""
        on, mode = self.qpcmv
        value = self._voice_setting(arg, "ec25-qpcmv", "+QPCMV: (0,1),(0-2)",
                                    f"+QPCMV: {on},{mode}" if on else "+QPCMV: 0")
        if value is None:
            return
        if value not in ("0", "1,0", "1,1", "1,2"):
            self._line("ERROR")
            return
        self.qpcmv = (1, int(value[2])) if value != "0" else (0, 0)
        self._ok()
        self._update_voice()

    def _drop_call(self, by: str, *, silent: bool = False) -> None:
        if self._call is not None and not self._call.ended:
            self._end_call(self._call, by, cause=27, silent=silent)

    async def _reboot(self) -> None:
        self._drop_call("network", silent=True)
        self._booting = True
        self._inbuf.clear()
        await asyncio.sleep(0.3)
        self.st = _State()
        self.qpcmv = (0, 0)
        self._booting = False
        for urc in self.dialect.boot_urcs or ("RDY",):
            self._urc(urc)


def _clcc(c: SimCall) -> str:
    kind = 145 if c.number.startswith("+") else 129
    return f'+CLCC: 1,{c.direction},{c.stat},0,0,"{c.number}",{kind}'


# What +CGMI, +CGMM and +CGMR answer, per dialect (as the real modules do).
_IDENTITY = {
    "generic": ("GSM", "GSM MODULE", "1.0"),
    "sim800": ("SIMCOM_Ltd", "SIMCOM_SIM800L", "Revision:1418B04SIM800L24"),
    "sim7600": ("SIMCOM INCORPORATED", "SIMCOM_SIM7600E-H", "LE20B04SIM7600M22"),
    "ec25": ("Quectel", "EC25", "EC25EFAR06A06M4G"),
    "huawei": ("huawei", "E173", "11.126.85.00.209"),
}
# The 27.007/27.005 test forms (AT+X=?) a module answers: the line before OK, or only OK.
_TEST_FORMS = {
    "+CMEE": "+CMEE: (0-2)", "+CLIP": "+CLIP: (0,1)", "+COLP": "+COLP: (0,1)",
    "+CMGF": "+CMGF: (0,1)", "+CREG": "+CREG: (0-2)", "+CGREG": "+CGREG: (0-2)",
    "+CSQ": "+CSQ: (0-31,99),(0-7,99)", "+CFUN": "+CFUN: (0,1,4),(0,1)",
    "+CSCS": '+CSCS: ("IRA","GSM","UCS2")', "+CUSD": "+CUSD: (0-2)",
    "+CNMI": "+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)", "+CMGD": "+CMGD: (1-50),(0-4)",
    "+CLCC": None, "+CHUP": None, "+CPIN": None, "+CSCA": None, "+CMGS": None, "+CMGR": None,
    "+CMGL": "+CMGL: (0-4)",
    "+CSMP": None, "+CEER": None, "+CGMI": None, "+CGMM": None, "+CGMR": None, "+CGSN": None,
    "+CIMI": None, "+CNUM": None, "+CVHU": "+CVHU: (0,1)", "+CGATT": "+CGATT: (0,1)",
    "+COPS": '+COPS: (2,"MegaFon","MegaFon","25002"),(3,"MTS RUS","MTS","25001"),,(0-4),(0-2)',
}
_CME_TEXT = {3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
             100: "unknown"}

_EXACT = {
    "": SimModem._ok,
    "Z": SimModem._atz,
    "E0": lambda m: (setattr(m.st, "echo", False), m._ok()),
    "E1": lambda m: (setattr(m.st, "echo", True), m._ok()),
    "H": SimModem._hangup, "H0": SimModem._hangup, "+CHUP": SimModem._hangup,
    "A": SimModem._ata,
    "I": lambda m: SimModem._info(m, "\r\n".join(_IDENTITY[m.dialect.name]))(m),
    "+CGMI": lambda m: SimModem._info(m, _IDENTITY[m.dialect.name][0])(m),
    "+CGMM": lambda m: SimModem._info(m, _IDENTITY[m.dialect.name][1])(m),
    "+CGMR": lambda m: SimModem._info(m, _IDENTITY[m.dialect.name][2])(m),
    "+CGSN": lambda m: SimModem._info(m, m.imei)(m),
    "+CIMI": SimModem._cimi,
    "+CCID": SimModem._ccid, "+CICCID": SimModem._ccid, "+QCCID": SimModem._ccid,
    "^ICCID?": SimModem._ccid,
    "+CEER": SimModem._ceer,
    "+CNUM": SimModem._cnum,
}
_PREFIX = (
    ("+CMEE", lambda m, a: m._set_flag("cmee", a)),
    ("+CLIP", lambda m, a: m._set_flag("clip", a)),
    ("+CLIR", SimModem._clir),
    ("+COLP", lambda m, a: m._set_flag("colp", a)),
    ("+CMGF", lambda m, a: m._set_flag("cmgf", a)),
    ("+CLCC", SimModem._clcc_list),
    ("+CPIN", SimModem._cpin),
    ("+CREG", SimModem._creg),
    ("+CGREG", lambda m, a: m._creg(a, "cgreg")),
    ("+CSCA", SimModem._csca),
    ("+CGATT", lambda m, a: m._query(a, f"+CGATT: {int(m.registered)}")),
    ("+CSQ", SimModem._csq),
    ("+COPS", SimModem._cops),
    ("+CFUN", SimModem._cfun),
    ("+CMGS", SimModem._cmgs),
    ("+CMGR", SimModem._cmgr),
    ("+CMGL", SimModem._cmgl),
    ("+CMGD", SimModem._cmgd),
    ("+CUSD", SimModem._cusd),
    ("D", SimModem._atd),
    ("+CVHU", lambda m, a: m._ok()),
    ("^CURC", lambda m, a: m._ok()),
    ("^PORTSEL", lambda m, a: m._vendor(a, "huawei", "^PORTSEL: 0")),
    ("+QURCCFG", lambda m, a: m._ok()),
    ("+CSCS", SimModem._cscs),
    ("+CNMI", lambda m, a: m._ok()),
    ("+CSMP", SimModem._csmp),
    ("+MORING", lambda m, a: m._ok()),
    ("^DDSETEX", SimModem._ddsetex),
    ("+CPCMREG", SimModem._cpcmreg),
    ("+CPCMFRM", SimModem._cpcmfrm),
    ("+QPCMV", SimModem._qpcmv),
)
