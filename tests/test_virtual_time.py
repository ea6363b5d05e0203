"""The virtual-time event loop: hours in moments, no I/O or thread result skipped over."""
from __future__ import annotations

import asyncio
import time

from firmware.clock import run_virtual

WALL0 = 1_764_000_000.0  # a fixed date: nothing here depends on when the test runs


def test_eight_hours_pass_in_moments_and_the_wall_clock_follows():
    async def main(clock):
        fired = []
        loop = asyncio.get_running_loop()
        loop.call_later(3600, fired.append, "hour")
        await clock.sleep(8 * 3600)
        return fired, clock.now(), clock.wall()

    t0 = time.monotonic()
    fired, now, wall = run_virtual(main, wall0=WALL0)
    assert time.monotonic() - t0 < 2.0
    assert fired == ["hour"]
    assert now == 8 * 3600 and wall == WALL0 + 8 * 3600


def test_local_socket_replies_are_never_skipped_by_a_time_out():
    async def main(clock):
        handlers = []

        async def echo(reader, writer):
            handlers.append(asyncio.current_task())
            while data := await reader.readline():
                writer.write(data)
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        timeouts = 0
        for i in range(300):
            writer.write(f"AT{i}\r\n".encode())
            try:
                line = await asyncio.wait_for(reader.readline(), 0.5)
                assert line == f"AT{i}\r\n".encode()
            except asyncio.TimeoutError:
                timeouts += 1
            await clock.sleep(30)  # a poll every 30 s of simulated time
        writer.close()
        await writer.wait_closed()
        await asyncio.gather(*handlers)
        server.close()
        await server.wait_closed()
        return timeouts, clock.now()

    timeouts, now = run_virtual(main, wall0=WALL0)
    assert timeouts == 0
    assert 300 * 30 <= now < 300 * 30 + 1


def test_a_threads_result_comes_before_later_timers():
    async def main(clock):
        order = []
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, order.append, "timer")
        order.append(await loop.run_in_executor(None, lambda: (time.sleep(0.1), "thread")[1]))
        await clock.sleep(1)
        return order

    assert run_virtual(main, wall0=WALL0) == ["thread", "timer"]

