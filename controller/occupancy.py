"""Operator occupancy, kept in the store so the KPIs survive a restart.

Occupancy is the share of the time an operator was on the floor (free, reserved for a call,
talking or wrapping up) that he spent handling calls (talking or wrapping up). Breaks and
not-ready time are not on the floor and count in neither. The floor's time per position and
state is written every ``FLUSH_S`` seconds and at stop; a crash loses at most that much.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import structlog

from controller.operators import FREE, RESERVED, TALKING, WRAP, OperatorPool

log = structlog.get_logger(__name__)

FLUSH_S = 30.0
ON_FLOOR = (FREE, RESERVED, TALKING, WRAP)
HANDLING = (TALKING, WRAP)


def flush(store, pool: OperatorPool) -> None:
    """Write the time counted since the last flush (one transaction, on the store's writer
    thread when the box runs one)."""
    taken = {k: s for k, s in pool.take_time().items() if s > 0}
    if not taken:
        return
    day = datetime.fromtimestamp(store.clock.wall(), timezone.utc).date().isoformat()
    store.submit(_add, [(day, pos, state, s) for (pos, state), s in taken.items()])


def _add(store, rows: list[tuple[str, str, str, float]]) -> None:
    with store.tx():
        store.db.executemany(
            "INSERT INTO operator_time (day, position, state, seconds) VALUES (?,?,?,?) "
            "ON CONFLICT (position, state, day) DO UPDATE SET seconds = seconds + "
            "excluded.seconds", rows)


async def keep(store, pool: OperatorPool, clock, every_s: float = FLUSH_S) -> None:
    """Flush every ``every_s`` seconds until cancelled (the owner flushes once more at stop)."""
    while True:
        await clock.sleep(every_s)
        try:
            flush(store, pool)
        except Exception:
            log.exception("occupancy_flush_failed")


def seconds_by_state(store, pool: OperatorPool | None, position: str | None = None
                     ) -> dict[str, dict[str, float]]:
    """position -> state -> seconds: what the store holds plus what is not yet written."""
    out: dict[str, dict[str, float]] = {}
    rows = store.db.execute(
        "SELECT position, state, SUM(seconds) FROM operator_time "
        + ("WHERE position=? " if position is not None else "")
        + "GROUP BY position, state", (position,) if position is not None else ())
    for pos, state, s in rows:
        out.setdefault(pos, {})[state] = s
    if pool is not None:
        for (pos, state), s in pool.take_time(keep=True).items():
            if position is None or pos == position:
                by = out.setdefault(pos, {})
                by[state] = by.get(state, 0.0) + s
    return out


def occupancy(store, pool: OperatorPool | None, position: str | None) -> float | None:
    """Handling time over time on the floor for ``position``; None when he was never on it."""
    if position is None:
        return None
    by = seconds_by_state(store, pool, position).get(position, {})
    floor = sum(by.get(s, 0.0) for s in ON_FLOOR)
    if floor <= 0:
        return None
    return round(sum(by.get(s, 0.0) for s in HANDLING) / floor, 4)
