"""SMS a SIM receives: read, joined, handed up, and deleted only once the box has kept them.

A ``+CMTI`` names the storage index of a new part: it is read (``AT+CMGR``) and joined with its
siblings. The whole message goes up as an :class:`InboundSms` whose ``uid`` is the line, the
sender, the service centre's time stamp and the text (the same message read twice has the same
uid) and stays on the SIM until the controller says it is stored: :meth:`SimInbox.stored` then
deletes its parts (``AT+CMGD``). After every (re)initialisation the storage is listed
(``AT+CMGL=4``), so a message the box had not kept before a crash or a power cut goes up again;
the store keeps it once.
"""
from __future__ import annotations

import hashlib
from typing import Callable

from firmware.gsm import pdu as smspdu
from firmware.gsm.concat import Reassembler
from firmware.lineapi import InboundSms

RETRIES = 3  # reads of a part that does not decode


class SimInbox:
    """One module's SIM storage of received messages."""

    def __init__(self, line: str, clock, log, emit: Callable[[InboundSms], None]) -> None:
        self.line, self.clock, self.log, self.emit = line, clock, log, emit
        self.part_timeout_s = 600.0  # a long message missing a part goes up without it then
        self._reassembler = Reassembler(timeout=self.part_timeout_s)
        self._parts: dict[tuple, dict[int, int]] = {}  # (sender, ref, count) -> part -> index
        self._kept: dict[str, list[int]] = {}  # uid -> storage indices: handed up, not stored
        self._seen: set[int] = set()  # indices read since the last listing
        self._unread: dict[int, int] = {}  # index -> failed reads (a text-mode answer, noise)

    async def read(self, engine, index: int) -> None:
        """A +CMTI: read the part at ``index`` (once, whether listed or announced first)."""
        if index in self._seen:
            return
        r = await engine.command(f"AT+CMGR={index}", timeout=10)
        body = [ln for ln in r.lines if not ln.startswith("+CMGR:")]
        if body:
            self._part(index, body[0])

    async def scan(self, engine) -> int:
        """Everything in storage, as after a restart; returns how many parts were listed."""
        r = await engine.command("AT+CMGL=4", timeout=20)
        self._seen.clear()
        self._unread.clear()
        self._parts.clear()
        self._reassembler = Reassembler(timeout=self.part_timeout_s)
        listed, index = 0, None
        for ln in r.lines:
            if ln.startswith("+CMGL:"):
                head = ln.split(":", 1)[1].split(",")[0].strip()
                index = int(head) if head.isdigit() else None
            elif index is not None:
                self._part(index, ln.strip())
                listed, index = listed + 1, None
        return listed

    def expire(self) -> None:
        """Long messages still missing parts after ``part_timeout_s``: what arrived goes up,
        the gap marked, so it is kept (and then leaves the SIM) rather than waiting forever."""
        for key, whole in self._reassembler.expired(self.clock.now()):
            self._hand_up(whole, sorted(self._parts.pop(key, {}).values()))

    async def retry(self, engine) -> None:
        """Read again what could not be decoded (the module answered in text mode while an SMS
        went out in it, say); three tries each, then it stays on the SIM for a person."""
        for index, tries in list(self._unread.items()):
            if tries < RETRIES:
                await self.read(engine, index)

    async def stored(self, engine, uid: str) -> bool:
        """The box has the message: its parts leave the SIM. False when it is not ours now."""
        indices = self._kept.pop(uid, None)
        if not indices:
            return False
        for i in indices:
            await engine.command(f"AT+CMGD={i}", timeout=10)
            self._seen.discard(i)
        return True

    def _part(self, index: int, pdu_hex: str) -> None:
        try:
            msg = smspdu.decode_deliver(pdu_hex)
        except smspdu.PduError as exc:  # still on the SIM: read again, then left for a person
            self._unread[index] = tries = self._unread.get(index, 0) + 1
            self.log.warning("gsm_inbound_sms_unreadable", index=index, tries=tries,
                             error=str(exc))
            return
        self._unread.pop(index, None)
        self._seen.add(index)
        key = None
        if msg.concat is not None and msg.concat.parts > 1:
            key = (msg.sender, msg.concat.reference, msg.concat.parts)
            self._parts.setdefault(key, {}).setdefault(msg.concat.part, index)
        whole = self._reassembler.add(msg, self.clock.now())
        if whole is not None:
            self._hand_up(whole, sorted(self._parts.pop(key).values()) if key else [index])

    def _hand_up(self, whole, indices: list[int]) -> None:
        sent_at = whole.timestamp.timestamp() if whole.timestamp is not None else None
        uid = hashlib.sha256(f"{self.line}|{whole.sender}|{sent_at}|{whole.text}".encode()
                             ).hexdigest()[:24]
        self._kept[uid] = indices
        self.emit(InboundSms(self.line, whole.sender, whole.text, self.clock.now(),
                             sent_at=sent_at, uid=uid))
