"""``dialbox run --simulate`` as a user runs it: a process that prints the URL and stops on Ctrl-C."""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import sys
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback)
        return json.loads(r.read())


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_run_prints_the_url_serves_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", "run", "--simulate", "--http", f"127.0.0.1:{port}",
        "--data", str(tmp_path / "d"), "--time-scale", "20", "--compliance", "none",
        "--operators", "4", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert f"http://127.0.0.1:{port}/" in line.decode()
        box = [(await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
               for _ in range(9)]  # the first start's password, framed so it is seen
        password = (tmp_path / "d" / "initial-admin-password").read_text().strip()
        assert box[0].startswith("╔") and box[-1].startswith("╚")
        assert len({len(x.rstrip("\n")) for x in box}) == 1  # every line as wide as the frame
        assert any("admin" in x for x in box) and any(password in x for x in box)
        third = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
        assert "dialing: Демо-кампания (the demo" in third  # a fresh data dir, --simulate
        await asyncio.sleep(4)
        health = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
        assert health["lines"]["total"] == 34 and health["lines"]["in_service"] == 34
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    db = sqlite3.connect(tmp_path / "d" / "dialbox.sqlite3")
    states = dict(db.execute("SELECT state, COUNT(*) FROM attempts GROUP BY state").fetchall())
    db.close()
    assert states.get("done", 0) > 0
    assert states.get("dialing", 0) == 0  # every call in progress was hung up and recorded
    # Every log line about a call carries line and call_id (JSON off a terminal).
    call_lines = [json.loads(x) for x in err.decode().splitlines()
                  if x.startswith("{") and '"call_' in x]
    assert call_lines and all("line" in x and "call_id" in x for x in call_lines)


async def test_no_profile_and_no_simulate_is_a_clear_error(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", "run", "--data", str(tmp_path / "d"),
        "--http", f"127.0.0.1:{free_port()}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "no hardware profile" in err.decode() and "Traceback" not in err.decode()


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["profile", "check", "--help"],
                                  ["modem", "--port", "x", "call", "--help"], ["e1", "--help"],
                                  ["compliance", "check", "--help"], ["user", "add", "--help"],
                                  ["linestate", "table", "--help"]])
def test_help_on_every_subcommand(args, capsys):
    from dialbox.cli import main
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out
