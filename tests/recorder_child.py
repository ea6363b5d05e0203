"""A box that records calls until it is killed: ``python -m tests.recorder_child DATA N``.

Runs a media plane, a recorder and the store at real time with N simulated calls (each line's
debtor speaks a tone of its own, each operator another), writes the recordings index like the
appliance does, and prints a JSON line every 100 ms with how many frames each call has recorded.
The test kills it with SIGKILL and checks what is left on disk and in the store.
"""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from controller import recordings
from controller.store import Store
from firmware.clock import Clock
from firmware.media.plane import MediaPlane
from firmware.media.recorder import Recorder
from tests.media_signals import tone


async def main(data: Path, n: int) -> None:
    clock = Clock()
    plane = MediaPlane(clock, jitter_prefill=1)
    store = Store(data / "dialbox.sqlite3")
    rec = Recorder(plane, data / "recordings", clock)
    await plane.start()
    calls = []
    for i in range(n):
        line = plane.add_leg(f"gsm{i}", "line", prefill=1)
        pos = plane.add_leg(f"pos{i}", "position", prefill=1)
        plane.connect(line, pos)
        call_id = f"call-{i}"
        path = rec.start(call_id, line.name)
        recordings.started(store, data=data, call_id=call_id, line=line.name, path=path,
                           started_at=clock.wall(), channels=2, operator=pos.name)
        calls.append((call_id, line, pos, tone(500 + 200 * i), tone(1700 + 200 * i)))
    k = 0
    while True:
        for _cid, line, pos, a, b in calls:
            line.push(a[k % len(a)])
            pos.push(b[k % len(b)])
        k += 1
        if k % 5 == 0:
            print(json.dumps({"frames": {cid: rec.active[cid].frames for cid, *_ in calls},
                              "worker": rec.worker_pid}), flush=True)
        await clock.sleep(0.02)


if __name__ == "__main__":
    from dialbox import logsetup
    logsetup.configure("WARNING")  # stdout carries the progress lines only
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
