"""GSM module driver: initialise, dial, follow call progress, keep the line healthy, recover."""
from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import structlog

from cext import linestate_codes as C
from firmware.clock import Clock
from firmware.driverapi import HwReport, Report
from firmware.errors import Msg, UserError, os_reason, reason_of
from firmware.gsm import errors as gsm_errors
from firmware.gsm import pdu as smspdu
from firmware.gsm import ussd
from firmware.gsm.alphabet import gsm7_septets, text_mode_fits, ucs2_hex
from firmware.gsm.dialects import DIALECTS, SERIAL_VOICE
from firmware.gsm.engine import ATEngine, ATError, ATTimeout, LinkLost, Response
from firmware.gsm.inbox import SimInbox
from firmware.lineapi import LineError, SmsStatus
from firmware.lineaudio import LineAudio
from firmware.profiles import Profile
from firmware.seriallink import open_link

log = structlog.get_logger(__name__)

# AT+CEER texts (SIMCom, Quectel, Huawei wording) -> Q.850.
CEER_CAUSES = {
    "unassigned number": 1, "unassigned (unallocated) number": 1, "unallocated number": 1,
    "no route to destination": 3, "normal call clearing": 16, "user busy": 17,
    "no user responding": 18, "no answer": 19, "user alerting, no answer": 19,
    "subscriber absent": 20, "call rejected": 21, "number changed": 22,
    "destination out of order": 27, "invalid number format": 28,
    "invalid number format (incomplete number)": 28, "normal, unspecified": 31,
    "no circuit/channel available": 34, "network out of order": 38, "temporary failure": 41,
    "switching equipment congestion": 42, "requested circuit/channel not available": 44,
    "resources unavailable, unspecified": 47,
}
# A module's USB audio port delivers with the host's jitter (URB completions, the tty layer's
# push, the loop): its line leg starts at one frame of prefill, as an E1 B-channel, and its
# jitter buffer grows by a frame at each underrun (or arrival jitter wider than it holds) up to
# GSM_MAX_PREFILL_FRAMES, shrinking back after a calm spell (cext/media_py.py, JitterBuffer).
GSM_PREFILL_FRAMES = 1
GSM_MAX_PREFILL_FRAMES = 3

_FINAL_CAUSE = {"BUSY": 17, "NO ANSWER": 19, "NO DIALTONE": 38}
# CME errors that need a person at the box (SIM missing, PIN, PUK, SIM blocked).
_NEEDS_PERSON = {10: Msg("no SIM card"), 11: Msg("SIM PIN required"),
                 12: Msg("SIM PUK required"), 13: Msg("SIM failure"), 262: Msg("SIM blocked")}


class _Trouble(Exception):
    """The module needs re-initialising; its argument (a Msg) is the out-of-service reason."""


def rssi_to_dbm(rssi: int) -> int | None:
    """``+CSQ`` rssi (0..31, 99 unknown) to dBm."""
    return None if rssi == 99 or rssi < 0 or rssi > 31 else -113 + 2 * rssi


class GsmModule:
    """One GSM module on one serial port: one channel."""

    kind = "gsm"

    def __init__(self, name: str, port: str, profile: Profile, clock: Clock, *,
                 baud: int = 115200, number: str | None = None,
                 audio_port: str | None = None, seat: str | None = None) -> None:
        self.name = name
        self.port = port
        # The call's audio: on a serial port after the profile's voice command (the media plane
        # carries it), on analog pins wired to one seat, or not through the box at all.
        self.voice = profile.audio
        self.audio_port = audio_port if profile.audio in SERIAL_VOICE else None
        self.seat = seat if profile.audio == "analog-seat" else None
        self._leg = None  # this line's leg in the media plane (attach_media)
        self._audio: LineAudio | None = None
        self._letting_go: set[LineAudio] = set()  # audio ports closing
        self._voice_seq = -1  # the call whose audio was started
        self._ddsetex_seq = -1  # Huawei: the call AT^DDSETEX=2 was sent for after ATD
        self.profile = profile
        self.dialect = DIALECTS[profile.dialect]
        self.clock = clock
        self.baud = baud
        self.declared_number = number  # the line's official number from the profile (E.164)
        self.info: dict[str, Any] = {"port": port, "dialect": profile.dialect,
                                     "number": number, "number_source": "profile" if number
                                     else None, "caller_id": "unknown"}
        self.in_service = False
        self.reason = Msg("starting")
        self._report: Report | None = None
        self._engine: ATEngine | None = None
        self._task: asyncio.Task | None = None
        self._trouble = asyncio.Event()
        self._trouble_reason = ""
        self._stopping = False
        self._call_up = False  # a call is placed or offered on this module
        self._answered = False
        self._offered = False
        self._outbound = False  # the call up is ours (a waiting caller is not offered over it)
        self._dial_task: asyncio.Task | None = None
        self._call_seq = 0  # which call a max-length timer belongs to
        self._limit_task: asyncio.Task | None = None  # the answered call's max-length timer
        self._tasks: set[asyncio.Task] = set()
        self._failures = 0
        self.parked = False  # out of service after max_failures: waits for a reset
        self._port_lost = False  # the port went away (unplugged): not the module's silence
        self._revive = asyncio.Event()
        self.log = log.bind(line=name)
        self.call_log = self.log  # lines about the current call: its id and campaign too
        self.on_sms = None  # callable(SmsStatus | InboundSms), set by the line manager
        self._sms_sent: dict[tuple[int, str], tuple[str, int]] = {}  # (mr, number) -> (id, part)
        self._sms_ref = 0
        self._inbox = SimInbox(name, clock, self.log, self._sms_event)
        self._ussd: asyncio.Future | None = None
        self._balance_checked = -1e9

    # --- Driver protocol --------------------------------------------------------------------
    def channel_names(self) -> list[str]:
        return [self.name]

    def tag_call(self, channel: int, tags: dict) -> None:
        """The line manager names the call on this module (its id, the campaign): every log
        line about it carries them, URC-driven ones included."""
        self.call_log = self.log.bind(**tags)

    def attach_media(self, plane) -> None:
        """A module with an audio serial port carries its calls' audio in the plane."""
        if self.audio_port and self._leg is None:
            self._leg = plane.add_leg(self.name, "line", prefill=GSM_PREFILL_FRAMES,
                                      max_prefill=GSM_MAX_PREFILL_FRAMES)

    def seat_of(self, channel: int = 0) -> str | None:
        """The one operator position an analog-seat module is wired to (None: any)."""
        return self.seat

    async def start(self, report: Report) -> None:
        self._report = report
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        self._stopping = True
        if self._call_up and self._engine is not None and not self._engine.lost:
            try:
                self._engine.abort_in_flight()
                await self._engine.command(self.profile.hangup, timeout=2)
            except (ATError, ATTimeout, LinkLost):
                pass
        self._voice_down()
        if self._letting_go:  # the serial transport lets a port go in a task of its own
            await asyncio.wait([asyncio.ensure_future(a.closed.wait())
                                for a in self._letting_go], timeout=2)
        for t in [self._task, self._dial_task, *self._tasks]:
            if t is not None:
                t.cancel()
        await asyncio.gather(*[t for t in [self._task, self._dial_task, *self._tasks] if t],
                             return_exceptions=True)
        if self._engine is not None:
            await self._engine.aclose()
            self._engine = None

    @property
    def ring_timeout_s(self) -> float:
        return self.profile.ring_timeout_s

    async def dial(self, channel: int, number: str, *, ring_timeout_s: float | None = None
                   ) -> None:
        if not re.fullmatch(r"\+?[0-9]{3,20}", number):
            raise UserError(f"{self.name}: cannot dial {number!r}: not a phone number")
        self._call_up, self._answered, self._outbound = True, False, True
        self._call_seq += 1
        self._dial_task = self._spawn(self._dial(number, ring_timeout_s))

    async def hangup(self, channel: int, cause: int = 16) -> None:
        engine = self._engine
        if engine is None or engine.lost:
            self._released(cause)
            return
        engine.abort_in_flight()
        try:
            await engine.command(self.profile.hangup, timeout=self.profile.command_timeout_s)
        except (ATTimeout, LinkLost) as exc:
            # Not confirmed: the call may still be up. Re-initialising the module ends it;
            # going out of service tells the line core the call is over.
            self.call_log.warning("hangup_failed", error=str(exc))
            self._flag_trouble(Msg("no answer to {command}: {error}",
                                   command=self.profile.hangup, error=reason_of(exc)))
            return
        except ATError as exc:
            self.call_log.info("hangup_refused", final=exc.final)  # no call left to hang up
        self._released(0)

    async def reset(self, channel: int = 0, *,
                    reason: str = Msg("the module did not confirm a request in time")) -> None:
        """Re-initialise the module (the line core saw no confirmation, or a person asked);
        a line taken out of service after too many failures starts again from the first step."""
        if self.parked:
            self._revive.set()
        else:
            self._flag_trouble(Msg("reset requested: {reason}", reason=reason))

    async def answer(self, channel: int) -> None:
        engine = self._require_engine()
        try:
            await engine.command("ATA", timeout=10)
        except (ATError, ATTimeout, LinkLost) as exc:
            self._emit(C.EV_HW_RELEASE, 41,
                       reason=Msg("answer failed: {error}", error=reason_of(exc)))
            self._released(0)
            return
        self._answered = True
        self._on_answer()

    async def bridge(self, channel: int, position: str) -> None:
        # A module wired to a seat (analog audio) is connected to that seat already and to no
        # other; on a gateway with its own voice bridge the cross-connect takes bridge_delay_s.
        if self.seat is not None:
            if position != self.seat:
                raise LineError(f"{self.name}: wired to seat {self.seat}, cannot reach "
                                f"{position}")
        else:
            await self.clock.sleep(self.profile.bridge_delay_s)
        if self._call_up and self._answered:
            self._emit(C.EV_HW_BRIDGED, info={"position": position})

    async def send_sms(self, channel: int, number: str, text: str, *, sms_id: str) -> dict:
        """Send one SMS (split into parts when long); the parts' message references come back."""
        e = self._require_engine()
        if self.profile.sms_mode == "text" and text_mode_fits(text):
            return await self._send_text_mode(number, text, sms_id)
        self._sms_ref = (self._sms_ref + 1) % 256
        try:
            parts = smspdu.encode_submit(number, text, reference=self._sms_ref)
        except smspdu.PduError as exc:
            raise UserError(f"cannot send SMS to {number!r}: {exc}") from None
        refs: list[int] = []
        for part in parts:
            try:
                r = await e.command(f"AT+CMGS={part.tpdu_length}", payload=part.hex.encode(),
                                    timeout=40)
            except ATError as exc:
                err = gsm_errors.parse_error_line(exc.final)
                detail = err.reason if err else exc.final
                self._sms_event(SmsStatus(self.name, sms_id, "failed", detail,
                                          self.clock.now()))
                return {"sms_id": sms_id, "status": "failed", "parts": len(parts),
                        "sent_parts": len(refs), "references": refs, "error": detail,
                        "action": err.action.value if err else None,
                        "sender_blocked": gsm_errors.sender_blocked(err)}
            mr = int(r.first("+CMGS:") or -1)
            refs.append(mr)
            self._sms_sent[(mr, _digits(number))] = (sms_id, part.part)
        self._sms_event(SmsStatus(self.name, sms_id, "sent", "", self.clock.now()))
        return {"sms_id": sms_id, "status": "sent", "parts": len(parts), "references": refs}

    async def _send_text_mode(self, number: str, text: str, sms_id: str) -> dict:
        """Text mode (one part only: text mode cannot concatenate), GSM or UCS2 character set."""
        e = self._require_engine()
        gsm = gsm7_septets(text) is not None
        try:
            await e.command("AT+CMGF=1", timeout=5)
            if gsm:
                await e.command('AT+CSCS="GSM"', timeout=5)
                await e.command("AT+CSMP=49,167,0,0", timeout=5)  # 49: status report wanted
                cmd, body = f'AT+CMGS="{number}"', text.encode("gsm03.38")
            else:
                await e.command('AT+CSCS="UCS2"', timeout=5)
                await e.command("AT+CSMP=49,167,0,8", timeout=5)
                cmd, body = f'AT+CMGS="{ucs2_hex(number)}"', ucs2_hex(text).encode("ascii")
            r = await e.command(cmd, payload=body, timeout=40)
        except ATError as exc:
            err = gsm_errors.parse_error_line(exc.final)
            detail = err.reason if err else exc.final
            self._sms_event(SmsStatus(self.name, sms_id, "failed", detail, self.clock.now()))
            return {"sms_id": sms_id, "status": "failed", "parts": 1, "sent_parts": 0,
                    "references": [], "error": detail,
                    "action": err.action.value if err else None,
                    "sender_blocked": gsm_errors.sender_blocked(err)}
        finally:
            try:  # back to PDU mode: inbound SMS and reports are read as PDUs
                await e.command("AT+CMGF=0", timeout=5)
            except (ATError, ATTimeout, LinkLost):
                self._flag_trouble(Msg("could not return the module to SMS PDU mode"))
        mr = int(r.first("+CMGS:") or -1)
        self._sms_sent[(mr, _digits(number))] = (sms_id, 1)
        self._sms_event(SmsStatus(self.name, sms_id, "sent", "", self.clock.now()))
        return {"sms_id": sms_id, "status": "sent", "parts": 1, "references": [mr],
                "mode": "text"}

    async def check_balance(self) -> dict:
        """Ask the balance by the USSD code of the SIM's operator (from the profile); the
        answer comes as +CUSD."""
        code = self.balance_code()
        if not code:
            raise UserError("{line}: the profile has no ussd_balance code for this SIM's "
                            "operator ({operator})", line=self.name,
                            operator=self.info.get("operator") or "?")
        e = self._require_engine()
        packed = self.dialect.call_progress == "huawei"  # Huawei firmware wants packed GSM7
        self._ussd = asyncio.get_running_loop().create_future()
        try:
            await e.command(ussd.cusd_command(code, packed=packed), timeout=10)
            line = await asyncio.wait_for(asyncio.shield(self._ussd), 30)
        finally:
            self._ussd = None
        reply = ussd.parse_cusd(line)
        if reply.failed:
            raise ussd.UssdError(f"{self.name}: the network did not answer {code}: "
                                 f"{ussd.STATUS_NAMES[reply.status]}")
        balance = ussd.parse_balance(reply.text)
        self.info["balance"] = float(balance) if balance is not None else None
        self.info["balance_text"] = reply.text
        return {"balance": self.info["balance"], "text": reply.text}

    def balance_code(self) -> str | None:
        """The balance USSD code for this SIM's operator (None: the profile has none)."""
        return self.profile.balance_code(self.info.get("imsi"), self.info.get("operator"))

    def _sms_event(self, ev) -> None:
        if self.on_sms is not None:
            self.on_sms(ev)

    def _on_status_report(self, pdu_hex: str) -> None:
        try:
            rep = smspdu.decode_status_report(pdu_hex)
        except smspdu.PduError as exc:
            self.log.warning("gsm_bad_status_report", error=str(exc))
            return
        key = (rep.message_reference, _digits(rep.recipient))
        found = self._sms_sent.get(key)
        if found is None:
            self.log.info("gsm_status_report_unmatched", mr=rep.message_reference)
            return
        if rep.final:
            del self._sms_sent[key]
        self._sms_event(SmsStatus(self.name, found[0], rep.sms_status,
                                  f"part {found[1]}: {rep.status_name}", self.clock.now()))

    async def _inbound_sms(self, index: int | None) -> None:
        """Read a new part (a +CMTI's index), list the whole storage (None, after init), or
        read again what did not decode (-1, from the health loop)."""
        e = self._engine
        if e is None:
            return
        try:
            if index is None:
                await self._inbox.scan(e)
            elif index < 0:
                await self._inbox.retry(e)
            else:
                await self._inbox.read(e, index)
        except (ATError, ATTimeout, LinkLost) as exc:  # still on the SIM: listed next init
            self.log.warning("gsm_inbound_sms_failed", error=str(exc))

    async def sms_stored(self, uid: str) -> None:
        """The box keeps the received message: delete it from the SIM (if it is still ours)."""
        e = self._engine
        if e is None:
            return  # still on the SIM: listed and confirmed again after the next init
        try:
            await self._inbox.stored(e, uid)
        except (ATError, ATTimeout, LinkLost) as exc:
            self.log.warning("gsm_sms_delete_failed", error=str(exc))

    def health(self, channel: int = 0) -> dict:
        return dict(self.info, in_service=self.in_service, reason=self.reason,
                    failures=self._failures, parked=self.parked, calls_per_day=self.profile.limits.get("calls_per_sim_per_day"))

    def _on_answer(self) -> None:
        """Report the answer; a call over the profile's max_call_s is ended by the box."""
        self._emit(C.EV_HW_ANSWER)
        max_s = self.profile.limits.get("max_call_s")
        if max_s:
            self._limit_task = self._spawn(self._limit_call(float(max_s), self._call_seq))
        if self._carries_audio() and self._voice_seq != self._call_seq:  # once a call
            self._voice_seq = self._call_seq
            self._spawn(self._voice_up(self._call_seq))

    # --- call audio on the module's audio port ----------------------------------------------
    def _carries_audio(self) -> bool:
        return self._leg is not None and self._leg.plane.running and not self._leg.removed

    async def _voice_up(self, seq: int) -> None:
        """The call is active: open the audio port, then put the voice on it."""
        self._voice_down()
        audio = LineAudio(self._leg, on_lost=lambda exc: self._audio_lost(audio, exc))
        try:
            await open_link(self.audio_port, lambda: audio, baud=self.baud)
            await asyncio.wait_for(audio.connected.wait(), 5)
        except (UserError, asyncio.TimeoutError) as exc:
            audio.close()
            if seq == self._call_seq and self._call_up:
                self._audio_fault(f"audio port {self.audio_port} cannot be opened: {exc}")
            return
        if seq != self._call_seq or not self._call_up:  # the call ended meanwhile
            audio.close()
            return
        self._audio = audio
        command = {"huawei-ddsetex": None if self._ddsetex_seq == seq else "AT^DDSETEX=2",
                   "sim7600-cpcmreg": "AT+CPCMREG=1",
                   "ec25-qpcmv": "AT+QPCMV=1,0"}[self.voice]
        if command and not await self._voice_command(command):
            self._audio_fault(f"the module refused {command}")

    async def _voice_command(self, command: str) -> bool:
        engine = self._engine
        if engine is None or engine.lost:
            return False
        try:
            await engine.command(command, timeout=self.profile.command_timeout_s)
            return True
        except (ATError, ATTimeout, LinkLost) as exc:
            self.call_log.warning("gsm_voice_command_failed", command=command, error=str(exc))
            return False

    def _call_down(self) -> None:
        """The call is over: its audio stops and its max-length timer goes (a timer left
        sleeping for ``max_call_s`` after every call was a task per call of the last half hour)."""
        self._call_up = False
        self._voice_down()
        limit, self._limit_task = self._limit_task, None
        if limit is not None:
            limit.cancel()

    def _voice_down(self) -> None:
        """The call is over: stop carrying its audio (SIM7600: take PCM off the port)."""
        audio, self._audio = self._audio, None
        if audio is None:
            return
        audio.close()
        if not audio.closed.is_set():
            self._letting_go.add(audio)
            audio.on_closed = self._letting_go.discard
        if self.voice == "sim7600-cpcmreg":
            self._spawn(self._voice_command("AT+CPCMREG=0"))

    def _audio_lost(self, audio: LineAudio, exc: Exception | None) -> None:
        if audio is self._audio and not self._stopping:
            self._audio = None
            self._audio_fault(Msg("audio port {port} lost: {error}", port=self.audio_port,
                                  error=os_reason(exc)))

    def _audio_fault(self, reason: str) -> None:
        """No audio path for the call: a line fault, not the debtor's doing. The call is hung
        up and the module re-initialised (its audio port checked) before it dials again."""
        if not self._call_up:
            return
        self.call_log.warning("gsm_audio_fault", reason=reason)
        self._emit(C.EV_HW_RELEASE, 41, reason=reason, info=_FAULT)
        self._spawn(self._fault_hangup(reason))

    async def _fault_hangup(self, reason: str) -> None:
        engine = self._engine
        if engine is not None and not engine.lost:
            engine.abort_in_flight()
            try:
                await engine.command(self.profile.hangup, timeout=self.profile.command_timeout_s)
            except (ATError, ATTimeout, LinkLost):
                pass
        self._released(0)
        self._flag_trouble(reason)

    async def _check_audio_port(self) -> None:
        """Before service: the audio port opens (a module whose audio interface is gone must
        not take calls nobody could hear)."""
        if not self.audio_port:
            return
        closed = asyncio.get_running_loop().create_future()

        class _Probe(asyncio.Protocol):
            def connection_lost(self, exc) -> None:
                if not closed.done():
                    closed.set_result(None)
        try:
            transport, _ = await open_link(self.audio_port, _Probe, baud=self.baud)
        except UserError as exc:
            raise _Trouble(Msg("audio port: {problem}", problem=reason_of(exc))) from None
        transport.close()
        await asyncio.wait_for(closed, 2)

    async def _limit_call(self, max_s: float, seq: int) -> None:
        await self.clock.sleep(max_s)
        self._limit_task = None  # the hang-up below ends the call: not to be cancelled by it
        if self._call_up and self._answered and seq == self._call_seq:
            self.call_log.warning("call_over_max_length", max_call_s=max_s)
            await self.hangup(0)

    async def probe(self) -> dict:
        """Open, initialise and read what the module reports (for ``dialbox modem probe``)."""
        await self._open()
        try:
            await self._init()
            await self._poll()
        finally:
            if self._engine is not None:
                await self._engine.aclose()
                self._engine = None
        return dict(self.info)

    # --- supervision ------------------------------------------------------------------------
    async def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping:
            opened = False
            try:
                await self._open()
                opened = True
                await self._init()
                await self._inbound_sms(None)  # what arrived while the box was away, first
                self._failures = 0
                backoff = 1.0
                self._set_service(True, "")
                await self._serve()
            except asyncio.CancelledError:
                raise
            except LinkLost as exc:
                reason, self._port_lost = reason_of(exc), True
            except (_Trouble, ATError, ATTimeout, UserError) as exc:
                reason = reason_of(exc)
            except Exception as exc:  # never let one module's bug stop the box
                self.log.exception("gsm_module_failed")
                reason = Msg("internal error: {error}", error=str(exc))
            else:
                reason = self._trouble_reason or Msg("stopped")
            if self._stopping:
                break
            self._failures += 1
            self._call_up = self._answered = self._offered = self._outbound = False  # released
            self._voice_down()
            # A module that opens but does not answer waits for a person after max_failures;
            # a port that is gone (unplugged) is retried for as long as it takes.
            if opened and not self._port_gone() and \
                    self._failures >= self.profile.max_failures:
                await self._park(reason)
                backoff = 1.0
                continue
            self._set_service(False, reason)
            await self._recover()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 8.0)

    def _port_gone(self) -> bool:
        """The port itself went away (USB unplugged, pty closed), not the module's answers."""
        if self._port_lost:
            return True
        return not self.port.startswith(("socket://", "tcp://")) and not os.path.exists(self.port)

    async def _park(self, reason: str) -> None:
        """Too many failed recoveries: out of service until a person resets the line."""
        self._revive.clear()
        await self._recover()  # the profile's reset method, one last time
        self.parked = True
        self._set_service(False, Msg("taken out of service after {failures} failed recoveries "
                                     "({reason}); reset the line to try again",
                                     failures=self._failures, reason=reason))
        await self._revive.wait()
        self.log.info("gsm_line_reset_by_request")
        self.parked = False
        self._failures = 0

    async def _recover(self) -> None:
        """Recovery ladder: re-init (next loop), then a soft reset, then the profile's hook."""
        engine = self._engine
        if self._failures == 2 and self.profile.reset == "cfun" and engine and not engine.lost:
            self.log.warning("gsm_soft_reset")
            engine.interrupt()  # what was on the wire when the trouble came is given up
            try:
                await engine.command("AT+CFUN=1,1", timeout=5)
            except (ATError, ATTimeout, LinkLost):
                pass
            await asyncio.sleep(1.0)
        elif self._failures >= 3 and self.profile.reset == "hook" and self.profile.reset_hook:
            self.log.warning("gsm_reset_hook", hook=self.profile.reset_hook)
            proc = await asyncio.create_subprocess_shell(self.profile.reset_hook)
            await proc.wait()
        if engine is not None:  # wait until the port is let go (a stop meanwhile waits too)
            await engine.aclose()
        self._engine = None

    async def _serve(self) -> None:
        self._trouble.clear()
        self._trouble_reason = ""
        while not self._stopping:
            try:
                await asyncio.wait_for(self._trouble.wait(), self.profile.health_interval_s)
                raise _Trouble(self._trouble_reason)
            except asyncio.TimeoutError:
                pass
            if self._call_up and self.dialect.call_progress == "final":
                continue  # the port is busy with ATD; poll after the call
            await self._unless_trouble(self._health())

    async def _unless_trouble(self, coro) -> None:
        """Run ``coro``, but give it up as soon as trouble is flagged: a reset the line core
        asks for must not wait behind a balance USSD (up to 40 s) on a port that answers
        garbage."""
        step = asyncio.ensure_future(coro)
        trouble = asyncio.ensure_future(self._trouble.wait())
        try:
            await asyncio.wait({step, trouble}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            trouble.cancel()
            if not step.done():
                step.cancel()
                await asyncio.gather(step, return_exceptions=True)
        if step.cancelled():
            raise _Trouble(self._trouble_reason)
        step.result()

    async def _health(self) -> None:
        """One round of the health checks (and the SMS that wait for a second look)."""
        self._inbox.expire()  # long SMS whose missing parts never came
        await self._inbound_sms(-1)  # parts that did not decode the first time
        try:
            await self._poll()
            if self.balance_code() and \
                    self.clock.now() - self._balance_checked > self.profile.balance_interval_s:
                self._balance_checked = self.clock.now()
                try:
                    await self.check_balance()
                except (ATError, asyncio.TimeoutError, ussd.UssdError) as exc:
                    self.log.warning("gsm_balance_check_failed", error=str(exc))
        except ATTimeout as exc:
            # One slow answer is not a dead module: a bare AT tells.
            try:
                await self._require_engine().command("AT", timeout=2)
            except (ATTimeout, ATError):
                raise _Trouble(Msg("no response from the module ({error})",
                                   error=reason_of(exc))) from None

    async def _open(self) -> None:
        self._close()
        engine = self._engine = ATEngine(self._on_urc, self._on_lost, name=self.name)
        await open_link(self.port, lambda: engine, baud=self.baud, rtscts=self.profile.rtscts)
        # Some transports call connection_made on the next loop turn.
        await asyncio.wait_for(engine.connected.wait(), 5)
        self._port_lost = False

    def _close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    async def _init(self) -> None:
        e = self._require_engine()
        t = self.profile.command_timeout_s
        for attempt in range(3):  # autobauding modules eat the first bytes until an AT syncs them
            try:
                await e.command("AT", timeout=min(t, 1.5))
                break
            except (ATTimeout, ATError):
                if attempt == 2:
                    raise _Trouble(Msg("no response to AT")) from None
        await e.command("ATE0", timeout=t)
        await e.command("AT+CMEE=1", timeout=t)
        try:  # PDU mode: the robust SMS path; text mode hangs some firmware in the prompt
            await e.command("AT+CMGF=0", timeout=t)
            await e.command("AT+CNMI=2,1,0,1,0", timeout=t)
        except ATError as exc:
            self.log.warning("gsm_sms_setup_refused", final=exc.final)
        for cmd in self.profile.init:
            try:
                await e.command(cmd, timeout=t)
            except ATError as exc:
                self.log.warning("gsm_init_command_refused", command=cmd, final=exc.final)
        for key, cmd in (("manufacturer", "AT+CGMI"), ("model", "AT+CGMM"),
                         ("firmware", "AT+CGMR"), ("imei", "AT+CGSN")):
            try:
                r = await e.command(cmd, timeout=t)
                self.info[key] = _bare(r)
            except ATError:
                self.info[key] = None
        try:
            r = await e.command("AT+CPIN?", timeout=t)
        except ATError as exc:
            if exc.code in _NEEDS_PERSON:
                self.info["sim"] = _NEEDS_PERSON[exc.code]
                raise _Trouble(Msg("{problem} (+CME ERROR: {code})",
                                   problem=_NEEDS_PERSON[exc.code], code=exc.code)) from None
            raise
        await self._check_audio_port()
        if self.voice == "sim7600-cpcmreg" and self.audio_port:
            try:
                await e.command("AT+CPCMFRM=0", timeout=t)  # 8 kHz, 320-byte frames
            except ATError as exc:
                self.log.warning("gsm_init_command_refused", command="AT+CPCMFRM=0",
                                 final=exc.final)
        sim = r.first("+CPIN:") or ""
        self.info["sim"] = sim
        if sim != "READY":
            raise _Trouble(Msg("SIM not ready: {state}", state=sim))
        for key, cmd in (("imsi", "AT+CIMI"), ("iccid", self.dialect.iccid)):
            try:
                r = await e.command(cmd, timeout=t)
                self.info[key] = _bare(r).split(":")[-1].strip()
            except ATError:
                self.info[key] = None
        await self._end_leftover_call(e, t)
        await self._show_number(e, t)
        await self._poll()

    async def _end_leftover_call(self, e: ATEngine, t: float) -> None:
        """A call the module still holds from before (the box restarted, or lost the port,
        under it) is hung up: nothing here follows it, and it would refuse the next dial."""
        try:
            r = await e.command("AT+CLCC", timeout=t)
        except ATError:
            return
        calls = [m for m in (re.match(r"\+CLCC:\s*\d+,(\d),(\d)", line) for line in r.lines)
                 if m and m.group(2) != "6"]
        # A debtor calling in (incoming, stat 4) is offered as usual, by its RING.
        if any(not (m.group(1) == "1" and m.group(2) in ("4", "5")) for m in calls):
            self.log.warning("gsm_leftover_call_hung_up", calls=len(calls))
            try:
                await e.command(self.profile.hangup, timeout=t)
            except ATError as exc:
                self.log.warning("hangup_refused", final=exc.final)

    async def _show_number(self, e: ATEngine, t: float) -> None:
        """Caller ID on for good (137-FZ: the number is never hidden), and which number it is.

        ``AT+CLIR=2`` suppresses CLIR until changed and ``AT+CLIR?`` confirms it; every ATD
        also carries the per-call "show" modifier. A subscription that hides the number for
        good (+CLIR: n,1), or a module that keeps hiding it, takes the line out of service.
        """
        try:
            await e.command("AT+CLIR=2", timeout=t)
        except ATError as exc:
            self.log.warning("gsm_clir_refused", final=exc.final)
        try:
            r = await e.command("AT+CLIR?", timeout=t)
            n, m = (int(x) for x in re.findall(r"\d+", r.first("+CLIR:") or "")[:2])
        except (ATError, ValueError):
            self.info["caller_id"] = "unconfirmed (no +CLIR answer); shown per call"
        else:
            if m == 1 or (n != 2 and m == 3) or n == 1:
                self.info["caller_id"] = "restricted"
                raise _Trouble(Msg("the SIM hides the caller's number (+CLIR: {n},{m}); the law "
                                   "forbids hidden numbers: ask the operator to allow caller ID",
                                   n=n, m=m))
            self.info["caller_id"] = "shown"
        sim_number = None
        try:
            r = await e.command("AT+CNUM", timeout=t)
            sim_number = parse_cnum(r.first("+CNUM:") or "")
        except ATError:
            pass
        self.info["sim_number"] = sim_number
        if self.declared_number:
            if sim_number and sim_number != self.declared_number:
                self.log.warning("gsm_sim_number_differs_from_profile")
        elif sim_number:
            self.info["number"], self.info["number_source"] = sim_number, "sim"

    async def _poll(self) -> None:
        """Signal, registration, operator: what a technician asks first."""
        e = self._require_engine()
        t = self.profile.command_timeout_s
        r = await e.command("AT+CSQ", timeout=t)
        m = re.match(r"(\d+),(\d+)", r.first("+CSQ:") or "")
        self.info["rssi"] = int(m.group(1)) if m else None
        self.info["signal_dbm"] = rssi_to_dbm(int(m.group(1))) if m else None
        r = await e.command("AT+CREG?", timeout=t)
        fields = (r.first("+CREG:") or "").split(",")
        stat = int(fields[1]) if len(fields) > 1 and fields[1].strip().isdigit() else -1
        self.info["registration"] = _REG.get(stat) or Msg("unknown ({stat})", stat=stat)
        r = await e.command("AT+COPS?", timeout=t)
        ops = (r.first("+COPS:") or "").split(",")
        self.info["operator"] = ops[2].strip('"') if len(ops) > 2 else None
        if stat not in (1, 5):
            raise _Trouble(Msg("not registered on the network ({registration})",
                               registration=self.info["registration"]))

    # --- calls ------------------------------------------------------------------------------
    async def _dial(self, number: str, ring_timeout_s: float | None = None) -> None:
        e = self._engine
        if e is None or e.lost:
            self._emit(C.EV_HW_RELEASE, 27, reason=Msg("module out of service"),
                       info=_FAULT)
            self._released(0)
            return
        final_mode = self.dialect.call_progress == "final"
        ring = max(self.profile.ring_timeout_s, ring_timeout_s or 0.0)
        timeout = (ring + 20) if final_mode else 20
        self._emit(C.EV_HW_DIALING)
        try:
            r = await e.command(f"ATD{number}{self.dialect.show_number};", timeout=timeout,
                                check=False)
        except (ATTimeout, LinkLost) as exc:
            self.call_log.warning("gsm_dial_failed", error=str(exc))
            self._emit(C.EV_HW_RELEASE, 41, reason=Msg("dial failed: {error}", error=reason_of(exc)),
                       info=_FAULT)
            self._released(0)
            self._flag_trouble(Msg("no answer to ATD: {error}", error=reason_of(exc)))
            return
        if r.final.startswith(("+CME ERROR", "ERROR", "COMMAND NOT SUPPORT")):
            self.call_log.warning("gsm_dial_refused", final=r.final)
            self._emit(C.EV_HW_RELEASE, 41 if "ERROR" in r.final else 47,
                       reason=Msg("dial refused by the module: {final}", final=r.final),
                       info=_FAULT)
            self._released(0)
            return
        if not final_mode:
            if r.final != "OK":
                await self._call_ended(_FINAL_CAUSE.get(r.final))
            elif self.voice == "huawei-ddsetex" and self._carries_audio():
                seq = self._call_seq  # after ATD, as chan_dongle does
                if await self._voice_command("AT^DDSETEX=2"):
                    self._ddsetex_seq = seq
            return
        if r.final == "OK":
            self._answered = True
            self._on_answer()
        else:
            await self._call_ended(_FINAL_CAUSE.get(r.final))

    async def _call_ended(self, cause: int | None) -> None:
        if not self._call_up:
            return
        self._call_down()
        if cause is None and self.dialect.ceer and self._engine and not self._engine.lost:
            try:
                r = await self._engine.command("AT+CEER", timeout=3)
                cause = parse_ceer(r.first("+CEER:") or "")
            except (ATError, ATTimeout, LinkLost):
                cause = None
        fault = None if self._answered else await self._fault_under_call()
        if fault:  # the SIM or the network went away under the call: not the debtor's doing
            self.call_log.warning("gsm_line_fault_under_call", reason=fault)
            self._emit(C.EV_HW_RELEASE, 0, reason=fault, info=_FAULT)
            self._flag_trouble(fault)
        elif cause == 38:  # NO DIALTONE: our SIM has no network, the debtor was never called
            self._emit(C.EV_HW_RELEASE, 38, reason=Msg("no network on this line"),
                       info=_FAULT)
        elif cause:
            self._emit(C.EV_HW_RELEASE, cause)
        elif self._answered:
            self._emit(C.EV_HW_RELEASE, 16)
        else:  # NO CARRIER and nothing more: the outcome is not the debtor's to carry
            self._emit(C.EV_HW_RELEASE, 0, reason=Msg("the module reported no cause"),
                       info=_NO_CAUSE)
        self._emit(C.EV_HW_RELEASED)
        self._answered = False
        self._offered = self._outbound = False

    async def _fault_under_call(self) -> str | None:
        """Why our line, not the debtor, ended an unanswered call; None when it did not.

        A module whose SIM is pulled ends the call first and reports the SIM seconds later
        (registration loss up to 15 s later), while ``AT+CPIN?`` answers at once: ask it, and
        the registration, before the outcome is decided.
        """
        if self._trouble.is_set():
            return self._trouble_reason
        engine = self._engine
        if engine is None or engine.lost:
            return Msg("the module's port was lost under the call")
        t = self.profile.command_timeout_s
        try:
            r = await engine.command("AT+CPIN?", timeout=t)
            sim = (r.first("+CPIN:") or "").strip()
            if sim != "READY":
                return Msg("SIM not ready under the call (+CPIN: {state})", state=sim or "?")
            r = await engine.command("AT+CREG?", timeout=t)
        except ATError as exc:
            if exc.code in _NEEDS_PERSON:
                return Msg("{problem} under the call (+CME ERROR: {code})",
                           problem=_NEEDS_PERSON[exc.code], code=exc.code)
            return None
        except (ATTimeout, LinkLost) as exc:
            return Msg("the module stopped answering under the call ({error})",
                       error=reason_of(exc))
        fields = (r.first("+CREG:") or "").split(",")
        stat = fields[1].strip() if len(fields) > 1 else ""
        if stat.isdigit() and stat not in ("1", "5"):
            return Msg("lost network registration under the call ({registration})",
                       registration=_REG.get(int(stat), stat))
        return self._trouble_reason if self._trouble.is_set() else None

    def _released(self, cause: int) -> None:
        was_up = self._call_up
        self._call_down()
        self._answered = False
        self._offered = self._outbound = False
        if cause and was_up:
            self._emit(C.EV_HW_RELEASE, cause)
        self._emit(C.EV_HW_RELEASED)

    # --- URCs -------------------------------------------------------------------------------
    def _on_urc(self, line: str, payload: str | None) -> None:
        if line.startswith(self.dialect.boot_urcs) and not self._booting_expected():
            self._flag_trouble(Msg("module rebooted ({urc})", urc=line))
            return
        if line.startswith(self.dialect.noise_urcs):
            return
        if line.startswith("+CUSD"):
            if self._ussd is not None and not self._ussd.done():
                self._ussd.set_result(line)
        elif line.startswith("+CDS:") and payload:
            self._on_status_report(payload)
        elif line.startswith("+CMTI:"):
            index = line.rsplit(",", 1)[-1].strip()
            if index.isdigit():
                self._spawn(self._inbound_sms(int(index)))
        elif line.startswith("+CLCC:"):
            self._on_clcc(line)
        elif line.startswith("^ORIG"):
            self._emit(C.EV_HW_PROCEEDING)
        elif line.startswith("^CONF"):
            self._emit(C.EV_HW_ALERTING)
        elif line.startswith("^CONN"):
            self._answered = True
            self._on_answer()
        elif line.startswith("^CEND"):
            parts = line.split(":", 1)[1].split(",")
            cause = int(parts[3]) if len(parts) > 3 and parts[3].strip().isdigit() else None
            self._spawn(self._call_ended(cause or (16 if self._answered else 31)))
        elif line in ("NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE"):
            if self._call_up:
                self._spawn(self._call_ended(_FINAL_CAUSE.get(line)))
        elif line == "RING" or line.startswith("+CRING"):
            if not self._call_up:
                self._call_up = True
                self._spawn(self._offer_later())
        elif line.startswith("+CLIP:"):
            m = re.match(r'\+CLIP:\s*"([^"]*)"', line)
            self._offer(m.group(1) if m else None)
        elif line.startswith("+CPIN:") and line.split(":", 1)[1].strip() != "READY":
            self._flag_trouble(Msg("SIM state changed: {state}",
                                   state=line.split(":", 1)[1].strip()))
        elif line.startswith("+SIMCARD:") and "NOT AVAILABLE" in line:
            self._flag_trouble(Msg("SIM removed (+SIMCARD: NOT AVAILABLE)"))
        elif line.startswith("^SIMST:") and line.split(":", 1)[1].split(",")[0].strip() in \
                ("0", "255"):
            self._flag_trouble(Msg("SIM removed or invalid ({urc})", urc=line))
        elif line.startswith("+CREG:"):
            stat = line.split(":", 1)[1].split(",")[0].strip()
            if stat not in ("1", "5"):
                self._flag_trouble(Msg("lost network registration (+CREG: {stat})", stat=stat))
        else:
            self.log.debug("gsm_urc_ignored", urc=line)

    def _on_clcc(self, line: str) -> None:
        m = re.match(r'\+CLCC:\s*(\d+),(\d),(\d)', line)
        if not m:
            return
        direction, stat = int(m.group(2)), int(m.group(3))
        if direction == 1:
            return  # inbound calls are followed through RING/+CLIP and ATA
        if stat == 2:
            self._emit(C.EV_HW_PROCEEDING)
        elif stat == 3:
            self._emit(C.EV_HW_ALERTING)
        elif stat == 0 and not self._answered:
            self._answered = True
            self._on_answer()
        elif stat == 6:
            pass  # the final code (NO CARRIER/BUSY/...) follows and carries the meaning

    async def _offer_later(self) -> None:
        await asyncio.sleep(0.5)
        self._offer(None)

    def _offer(self, caller: str | None) -> None:
        if self._offered or self._outbound:
            return  # offered already, or a caller waiting behind our own call (+CLIP/+CCWA)
        self._offered = True
        self._call_seq += 1
        self._call_up = True
        self._emit(C.EV_HW_INBOUND, caller=caller)

    def _booting_expected(self) -> bool:
        return not self.in_service and self._failures > 0

    def _flag_trouble(self, reason: str) -> None:
        """`reason` is a Msg (the lines page shows it in its own language)."""
        self._trouble_reason = reason
        self._trouble.set()

    def _on_lost(self, exc: Exception | None) -> None:
        if self._stopping:
            return
        self._port_lost = True
        if self._call_up:
            self._call_down()
            self._emit(C.EV_HW_RELEASE, 27, reason=Msg("port lost"), info=_FAULT)
        self._flag_trouble(Msg("serial port lost: {error}", error=os_reason(exc)) if exc
                           else Msg("serial port lost"))

    # --- helpers ----------------------------------------------------------------------------
    def _set_service(self, up: bool, reason: str) -> None:
        changed = up != self.in_service or (not up and reason != self.reason)
        self.in_service, self.reason = up, reason
        if changed:
            if up:
                self.log.info("line_in_service")
            else:
                self.log.warning("line_out_of_service", reason=reason)
            self._emit(C.EV_HW_IN_SERVICE if up else C.EV_HW_OUT_OF_SERVICE, reason=reason)

    def _emit(self, event: int, cause: int = 0, *, reason: str = "", caller: str | None = None,
              info: dict | None = None) -> None:
        if self._report is not None:
            self._report(HwReport(0, event, cause, reason, caller, info or {}))

    def _require_engine(self) -> ATEngine:
        if self._engine is None or self._engine.lost:
            raise LinkLost(f"{self.name}: port is not open")
        return self._engine

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


_FAULT = {"line_fault": True}
_NO_CAUSE = {"no_cause": True}
_REG = {0: Msg("not searching"), 1: Msg("home"), 2: Msg("searching"), 3: Msg("denied"),
        4: Msg("unknown"), 5: Msg("roaming")}


def parse_ceer(text: str) -> int | None:
    """The Q.850 cause in an ``AT+CEER`` answer, by number or by its wording."""
    m = re.search(r"\b(\d{1,3})\b", text)
    if m and 0 < int(m.group(1)) < 128:
        return int(m.group(1))
    t = text.strip().strip('"').lower()
    for words, cause in sorted(CEER_CAUSES.items(), key=lambda kv: -len(kv[0])):
        if words in t:
            return cause
    return None


def parse_cnum(text: str) -> str | None:
    """The number in a ``+CNUM: "alpha","number",type`` answer, in E.164 when it can tell."""
    m = re.match(r'\s*"[^"]*"\s*,\s*"([^"]+)"\s*(?:,\s*(\d+))?', text)
    if m is None:
        return None
    number, kind = m.group(1).strip(), m.group(2)
    digits = _digits(number)
    if not digits:
        return None
    if number.startswith("+") or kind == "145":
        return "+" + digits
    if len(digits) == 11 and digits[0] in "78":  # a Russian SIM written as 8XXXXXXXXXX
        return "+7" + digits[1:]
    return digits


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _bare(r: Response) -> str:
    """The bare-text answer of +CGMI/+CGSN/+CIMI (the command in flight tells what it is)."""
    for line in r.lines:
        if line.strip():
            return line.strip()
    return ""
