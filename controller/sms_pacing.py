"""The pace of SMS per SIM: operators block SIMs that send in bursts.

One pacer for the box, shared by every campaign's reminders. Each SIM sends at most one message
per interval (default 30 s, or the hardware profile's ``sms_min_interval_s``), each gap longer
by a random jitter so the gaps are never regular; the daily cap is the reminders' own. The day's
reminders are spread over the hours the law still allows today: the box spaces its messages by
the hours left over the messages due (3,200 due at 09:00 with 13 hours left: one every 15 s,
each SIM of 32 about every 8 minutes), not 100 a SIM in the first hour. A SIM the operator
refuses (the driver says ``sender_blocked``: +CMS ERROR 21, 38, 42, barring) or that fails
several times in a row rests, longer each time, and the lines page says so.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

import structlog

from controller.compliance.workdays import day_kind
from controller.shop import shop_zone
from firmware.clock import Clock

log = structlog.get_logger(__name__)

INTERVAL_S = 30.0  # between two messages of one SIM, at least
JITTER = 0.5  # each gap is longer by up to this share of itself
REST_S = 3600.0  # a SIM the operator refused rests this long, doubled each time, up to a day
FAILURES_TO_REST = 3  # failures in a row that rest a SIM as a refusal does


@dataclass(frozen=True, slots=True)
class Rest:
    """A SIM resting after the operator refused its messages."""

    until: float  # clock seconds (``clock.now()``)
    until_wall: float  # the same moment as Unix time, for people
    reason: str


class SimPacer:
    """When each SIM may send its next SMS, and when the box may send its next one at all."""

    def __init__(self, clock: Clock, *, interval_s: float = INTERVAL_S, jitter: float = JITTER,
                 rest_s: float = REST_S, failures_to_rest: int = FAILURES_TO_REST,
                 interval_of: Callable[[str], float | None] | None = None,
                 spread: bool = True, seed: int | None = None, store=None) -> None:
        self.clock = clock
        self.store = store  # where rests are kept over a restart (None: in memory only)
        self.spread = spread  # False: no spacing over the day (per-SIM pace and rests only)
        self.interval_s = interval_s
        self.jitter = jitter
        self.rest_s = rest_s
        self.failures_to_rest = failures_to_rest
        self.interval_of = interval_of or (lambda line: None)  # a profile's own interval
        self.rests: dict[str, Rest] = {}
        self._rng = random.Random(seed)
        self._next: dict[str, float] = {}  # line -> clock seconds when it may send again
        self._failures: dict[str, int] = {}
        self._rested: dict[str, int] = {}  # line -> rests so far (each one twice as long)
        self._backlog: dict[int, tuple[int, float]] = {}  # campaign -> (due, seconds left)
        self._last = float("-inf")  # the box's last message (clock seconds)
        self._stretch = 1.0  # this gap's jitter on the box's spacing
        if store is not None:  # a SIM refused before a restart still rests after it
            now, wall = clock.now(), clock.wall()
            for line, until_wall, reason, times in store.db.execute(
                    "SELECT line, until_wall, reason, times FROM sim_rests WHERE until_wall > ?",
                    (wall,)):
                self.rests[line] = Rest(now + until_wall - wall, until_wall, reason)
                self._rested[line] = times

    def interval(self, line: str) -> float:
        own = self.interval_of(line)
        return float(own) if own else self.interval_s

    # --- choosing ---------------------------------------------------------------------------
    def ready(self, lines: Iterable[str], *, spread: bool = True) -> list[str]:
        """Those of ``lines`` that may send now: not resting, their own gap passed, and (for a
        message of the day's spread) the box's spacing passed."""
        now = self.clock.now()
        if spread and self._box_next() > now:
            return []
        out = []
        for line in lines:
            rest = self.rests.get(line)
            if rest is not None:
                if rest.until > now:
                    continue
                del self.rests[line]
                log.info("sms_sim_rest_over", line=line)
            if self._next.get(line, float("-inf")) <= now:
                out.append(line)
        return out

    def wait_s(self, lines: Iterable[str]) -> float | None:
        """Seconds until one of ``lines`` may send (0: now; None: no line)."""
        now = self.clock.now()
        times = [max(self._next.get(ln, now), self.rests[ln].until if ln in self.rests else now)
                 for ln in lines]
        if not times:
            return None
        return max(0.0, min(times) - now, self._box_next() - now)

    def plan(self, campaign_id: int, due: int, left_s: float) -> None:
        """A campaign has ``due`` messages for today, and the law allows ``left_s`` more."""
        self._backlog[campaign_id] = (due, left_s)

    def spacing_s(self) -> float:
        """Seconds between two messages of the box that spread the backlog over the hours
        left (0 with no backlog); the backlog and the hours are those of the last look."""
        due = sum(d for d, _ in self._backlog.values())
        if due <= 0 or not self.spread:
            return 0.0
        return min(s for d, s in self._backlog.values() if d > 0) / due

    # --- what happened ----------------------------------------------------------------------
    def sent(self, line: str) -> None:
        """A message went out on ``line`` (its next rest, if any, is the first again)."""
        self._failures.pop(line, None)
        if self._rested.pop(line, None) is not None and self.store is not None:
            self.store.submit(_forget_rest, line)
        self.rests.pop(line, None)
        self._spend(line)

    def failed(self, line: str, reason: str, *, blocked: bool) -> None:
        """A message failed on ``line``; ``blocked``: the operator refused this SIM's messages."""
        self._spend(line)  # a failure spends the SIM's turn as a message does
        n = self._failures[line] = self._failures.get(line, 0) + 1
        if blocked or n >= self.failures_to_rest:
            self.rest(line, reason if blocked else f"{n} failures in a row; the last: {reason}")

    def rest(self, line: str, reason: str) -> Rest:
        times = self._rested[line] = self._rested.get(line, 0) + 1
        rest_s = min(self.rest_s * 2 ** (times - 1), 86400.0)
        now = self.clock.now()
        r = self.rests[line] = Rest(now + rest_s, self.clock.wall() + rest_s, reason)
        if self.store is not None:
            self.store.submit(_keep_rest, line, r.until_wall, reason, times)
        self._failures.pop(line, None)
        log.warning("sms_sim_rested", line=line, rest_s=rest_s, reason=reason)
        return r

    def _spend(self, line: str) -> None:
        now = self.clock.now()
        self._next[line] = now + self.interval(line) * (1 + self._rng.uniform(0, self.jitter))
        self._last = now
        self._stretch = 1 + self._rng.uniform(-self.jitter / 2, self.jitter / 2)

    def _box_next(self) -> float:
        # Read at each use: a backlog that shrank, or hours running out, tighten the spacing.
        return self._last + self.spacing_s() * self._stretch


def _keep_rest(store, line: str, until_wall: float, reason: str, times: int) -> None:
    with store.tx():
        store.db.execute("INSERT INTO sim_rests (line, until_wall, reason, times) VALUES "
                         "(?,?,?,?) ON CONFLICT (line) DO UPDATE SET until_wall=excluded."
                         "until_wall, reason=excluded.reason, times=excluded.times",
                         (line, until_wall, reason, times))


def _forget_rest(store, line: str) -> None:
    with store.tx():
        store.db.execute("DELETE FROM sim_rests WHERE line=?", (line,))


def hours_left_s(profile, wall: float, tz: str | None = None) -> float:
    """Seconds of today's SMS hours still ahead, in ``tz`` (the shop's zone by default).

    The spread is a pace, not a permission: each message is still checked against the law in
    its debtor's own zone before it goes.
    """
    zone = ZoneInfo(tz or shop_zone())
    local = datetime.fromtimestamp(wall, zone)
    hours = profile.channel("sms").hours
    if hours is None:
        start, end = dtime(0), None
    else:
        start, end = hours.window(day_kind(profile.holiday_country, local.date()).rest)
    close = (datetime.combine(local.date(), end, zone) if end is not None
             else datetime.combine(local.date() + timedelta(days=1), dtime(0), zone))
    opens = datetime.combine(local.date(), start, zone)
    return max(0.0, (close - max(local, opens)).total_seconds())
