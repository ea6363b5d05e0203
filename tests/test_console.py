"""The field-service console over a pseudo-terminal, used the way picocom uses a serial port:
keys typed one by one, CR for Enter, a VT100 screen reading what comes back."""
from __future__ import annotations

import asyncio
import os
import re
import stat
import termios
import tty
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from controller import audit, users
from dialbox import config
from dialbox.appliance import Settings
from dialbox.console.lineedit import CTRL_C, LineEditor
from firmware.errors import UserError
from tests.gsmsim import until
from tests.runbox import cli, free_port, running

UP, LEFT = b"\x1b[A", b"\x1b[D"


class Terminal:
    """The technician's side of the serial line: a pty master, as picocom holds it."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master, termios.TCSANOW)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.out = bytearray()
        self.mark = 0
        self._changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            self.out += os.read(self.master, 65536)
        except (BlockingIOError, OSError):
            return
        self._changed.set()

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace")

    def since_mark(self) -> str:
        return self.out[self.mark:].decode(errors="replace")

    async def type(self, keys: bytes | str, *, enter: bool = True) -> None:
        """Typed key by key, as a person does (picocom sends each key as it is pressed)."""
        data = keys.encode() if isinstance(keys, str) else keys
        self.mark = len(self.out)
        for i in range(len(data)):
            os.write(self.master, data[i:i + 1])
            if i % 8 == 7:
                await asyncio.sleep(0)
        if enter:
            os.write(self.master, b"\r")

    async def expect(self, pattern: str, timeout: float = 15.0) -> str:
        """Wait until what came back since the last typed line matches; returns that output."""
        async def wait() -> str:
            while not re.search(pattern, self.since_mark()):
                self._changed.clear()
                await self._changed.wait()
            return self.since_mark()
        try:
            return await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {pattern!r} on the console; got:\n{self.since_mark()}"
                                 ) from None

    async def command(self, line: str, until_text: str = r"dialbox> $",
                      timeout: float = 15.0) -> str:
        await self.type(line)
        return await self.expect(until_text, timeout)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self.slave)


@asynccontextmanager
async def box(tmp_path, *, lockout_s: float = 300.0, operators: int = 0, cfg_text: str = "",
              time_scale: float = 1.0):
    term = Terminal()
    f = tmp_path / "dialbox.yaml"
    f.write_text(f"data: data\nlisten: [127.0.0.1:{free_port()}]\nsimulate: true\n"
                 f"console:\n  device: {term.path}\n  lockout_s: {lockout_s}\n" + cfg_text,
                 encoding="utf-8")
    cfg = config.load(f)
    settings = Settings(simulate=True, data=cfg.data, operators=operators, compliance="none",
                        time_scale=time_scale, seed=7)
    try:
        async with running(cfg, settings) as (app, task):
            yield app, term, task
    finally:
        term.close()


async def login(term: Terminal, pin: str) -> str:
    await term.expect(r"PIN: $")
    await term.type(pin)
    return await term.expect(r"(dialbox> |PIN: |new PIN: )$")


async def first_login(app, term: Terminal, new_pin: str = "27182818") -> None:
    pin_file = app.runtime.config.data / "initial-console-pin"
    one_time = pin_file.read_text().strip()
    out = await login(term, one_time)
    assert "one-time PIN" in out
    await term.type(new_pin)
    await term.expect(r"again: $")
    await term.type(new_pin)
    await term.expect(r"dialbox> $")


async def test_login_with_the_one_time_pin_then_every_show_command(tmp_path):
    async with box(tmp_path) as (app, term, _):
        pin_file = app.runtime.config.data / "initial-console-pin"
        assert stat.S_IMODE(pin_file.stat().st_mode) == 0o600
        one_time = pin_file.read_text().strip()
        assert "dialbox field-service console" in await term.expect(r"PIN: $")
        await term.type(one_time)
        out = await term.expect(r"new PIN: $")
        assert one_time not in out and "*" * len(one_time) in out  # never echoed
        await term.type("1234")  # too short: asked again
        await term.expect(r"again: $")
        await term.type("1234")
        assert "6 to 12 digits" in await term.expect(r"new PIN: $")
        await term.type("27182818")
        await term.expect(r"again: $")
        await term.type("27182818")
        await term.expect(r"dialbox> $")
        assert not pin_file.exists()
        await until(lambda: app.health()["lines"]["in_service"] == 34, timeout=30)

        out = await term.command("show status")
        assert "34/34 in service" in out and "Демо-кампания" in out
        out = await term.command("show lines")
        assert re.search(r"1\s+gsm0\s+gsm\s+idle", out) and "e1-0/1 " in out
        assert len([x for x in out.splitlines() if re.match(r"\d+\s", x)]) == 34
        out = await term.command("show line 1")
        assert "gsm0" in out and "imei" in out and "registration home" in out
        out = await term.command("show sims")
        assert "MegaFon" in out and "READY" in out and out.count("gsm") == 4
        out = await term.command("show spans")
        assert re.search(r"e1-0\s+established\s+30/30", out), out
        out = await term.command("show campaigns")
        assert "Демо-кампания" in out and "running" in out
        out = await term.command("show boot")
        assert "0 failed" in out and "ok     store" in out and "ok     console" in out
        out = await term.command("show recordings")
        assert "recordings" in out and "1096 days" in out
        out = await term.command("help")
        assert "test call LINE NUMBER" in out and "reset line N" in out
        out = await term.command("shwo lines")
        assert "unknown command" in out and "did you mean 'show lines'" in out

        # line editing: a typo corrected with Backspace, the cursor moved back to insert
        out = await term.command("show linex\x7fs")
        assert "gsm3" in out
        await term.type(b"show boo" + LEFT + LEFT + LEFT + b"\x1b[C\x1b[C\x1b[Ct")
        assert "0 failed" in await term.expect(r"dialbox> $")
        # history: Up brings the last command back
        await term.type(UP)
        assert "0 failed" in await term.expect(r"dialbox> $")
        await term.type(UP + UP)
        out = await term.expect(r"dialbox> $")
        assert "gsm3" in out  # two back: show lines

        await term.command("logout", r"PIN: $")
        out = await login(term, "27182818")
        assert out.endswith("dialbox> ")
        entries = audit.entries(app.store, obj="console")
        assert [e["action"] for e in entries][:3] == ["login", "pin_set", "login"]
        assert all(e["source"] == f"console:{term.path}" for e in entries)


async def test_three_wrong_pins_lock_the_console(tmp_path):
    async with box(tmp_path, lockout_s=3.0) as (app, term, _):
        await first_login(app, term)
        await term.command("logout", r"PIN: $")
        for left in (2, 1):
            out = await login(term, "00000000")
            assert f"wrong PIN ({left} tries left" in out
        out = await login(term, "11111111")
        assert "locked for 3 s" in out
        out = await login(term, "27182818")  # the right PIN, but locked
        assert "console locked" in out and not out.endswith("dialbox> ")
        await asyncio.sleep(3.2)
        out = await login(term, "27182818")
        assert out.endswith("dialbox> ")
        actions = [e["action"] for e in reversed(audit.entries(app.store, obj="console"))]
        assert actions[-5:] == ["login_failed", "login_failed", "login_failed", "locked", "login"]
        assert actions.count("login_failed") == 3 and actions.count("locked") == 1


async def test_field_service_actions_reach_the_hardware_and_are_audited(tmp_path):
    cfg_text = "network:\n  interface: eth0\n  address: 192.168.1.10/24\n"
    async with box(tmp_path, cfg_text=cfg_text, time_scale=10) as (app, term, task):
        await first_login(app, term)
        await until(lambda: app.health()["lines"]["in_service"] == 34, timeout=30)
        await term.command("pause all")  # keep the dialer off the line under test
        assert not any(d.running for d in app.runner.dialers.values())
        sim = app.sims[1]

        out = await term.command("test call 2 +79161234567", r"ringing [^\n]*\n+dialbox> $",
                                 timeout=60)
        dialed = [c for c in sim.commands if c.startswith("ATD")]
        assert dialed and "+79161234567" in dialed[-1], dialed  # seen at the simulated modem
        assert re.search(r"result\s+(answered|busy|no_answer|rejected|unreachable)", out)

        inits = sim.commands.count("ATE0")
        await term.command("reset line gsm1")
        await until(lambda: sim.commands.count("ATE0") > inits, timeout=30)
        await until(lambda: app.lines.state("gsm1") == "idle", timeout=30)

        await term.command("block line 3")
        assert app.lines.state("gsm2") == "blocked"
        await term.command("unblock line gsm2")
        await until(lambda: app.lines.state("gsm2") == "idle", timeout=10)

        await term.command("resume all")
        assert any(d.running for d in app.runner.dialers.values())
        await term.command("pause all")

        out = await term.command("set ip 10.20.30.40/24 gw 10.20.30.1")
        assert "saved to" in out
        saved = config.load(app.runtime.config.source)
        assert saved.network["address"] == "10.20.30.40/24"
        assert saved.network["gateway"] == "10.20.30.1"
        prev = config.load(app.runtime.config.source + ".prev")
        assert prev.network["address"] == "192.168.1.10/24"

        await term.type("set admin-password")
        await term.expect(r"new password for 'admin': $")
        await term.type("correct horse battery")
        await term.expect(r"again: $")
        await term.type("correct horse battery")
        assert "changed" in await term.expect(r"dialbox> $")
        assert users.verify(app.store, "admin", "correct horse battery")

        by_action = {(e["object"], e["action"]): e for e in audit.entries(app.store)
                     if e["who"] == "field-service"}
        for key in [("line", "test_call"), ("line", "reset"), ("line", "block"),
                    ("line", "unblock"), ("campaign", "pause"), ("campaign", "start"),
                    ("setting", "set_ip"), ("user", "password_set")]:
            assert key in by_action, key
            assert by_action[key]["source"] == f"console:{term.path}"
        assert by_action[("setting", "set_ip")]["after"]["address"] == "10.20.30.40/24"
        assert "correct horse" not in str(audit.entries(app.store))

        await term.type("reboot")
        await term.expect(r"\[yes/no\]: $")
        await term.type("yes")
        assert await asyncio.wait_for(task, 30) == 75
        from controller.store import Store
        store = Store(app.runtime.config.data / "dialbox.sqlite3")
        try:
            assert audit.entries(store, obj="console")[0]["action"] == "reboot"
        finally:
            store.close()


def test_line_editor_keys():
    ed = LineEditor("> ")
    ed.start()
    echo, lines = ed.feed(b"show lnes\x1b[D\x1b[D\x1b[Di\r\n")
    assert lines == ["show lines"]
    assert b"\x1b[D" in echo
    ed.remember("show lines")
    _, lines = ed.feed(b"abc\x03")
    assert lines == [CTRL_C]
    _, lines = ed.feed(b"x\x15show boot\x01\x1b[3~S\r")
    assert lines == ["Show boot"]
    ed.remember("Show boot")
    _, lines = ed.feed(b"\x1b[A\x1b[A\r")
    assert lines == ["show lines"]
    _, lines = ed.feed(b"draft\x1b[A\x1b[A\x1b[B\r")
    assert lines == ["Show boot"]
    _, lines = ed.feed(b"draft\x1b[A\x1b[B\r")
    assert lines == ["draft"]  # Down past the newest brings back what was being typed
    _, lines = ed.feed("привет\x7f\r".encode())  # UTF-8 over the wire, one key at a time
    assert lines == ["приве"]
    ed.start("PIN: ", hidden=True)
    echo, lines = ed.feed(b"1234\r")
    assert lines == ["1234"] and b"1234" not in echo and b"****" in echo
    _, lines = ed.feed(b"\x1b[A\r")
    assert lines == [""]  # no history while a PIN is typed


@pytest.mark.parametrize("pin,ok", [("123456", False), ("000000", False), ("12345", False),
                                    ("27182818", True), ("12a456", False)])
def test_new_pins_are_checked(pin, ok, tmp_path):
    from dialbox.console.pin import PinStore
    from firmware.errors import UserError
    store = PinStore(tmp_path)
    assert store.ensure() is not None and store.ensure() is None
    if ok:
        store.set(pin)
        assert store.verify(pin) and not store.one_time
    else:
        with pytest.raises(UserError):
            store.set(pin)
        assert store.one_time


def test_console_pin_command_sets_a_new_pin(tmp_path, monkeypatch, capsys):
    import io
    from dialbox.console.pin import PinStore
    PinStore(tmp_path).ensure()
    monkeypatch.setattr("sys.stdin", io.StringIO("31415926\n"))
    assert cli(["console", "pin", "--data", str(tmp_path)]) == 0
    assert PinStore(tmp_path).verify("31415926")
    assert not (tmp_path / "initial-console-pin").exists()
    assert stat.S_IMODE((tmp_path / "console-pin").stat().st_mode) == 0o600


@pytest.mark.timeout(120)
async def test_dialbox_run_with_console_flag_serves_the_console_and_its_log(tmp_path):
    import signal
    import sys
    term = Terminal()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", "run", "--simulate", "--console", term.path,
        "--data", str(tmp_path / "d"), "--http", f"127.0.0.1:{free_port()}",
        "--compliance", "none", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await term.expect(r"PIN: $", timeout=60)
        pin = (tmp_path / "d" / "initial-console-pin").read_text().strip()
        await term.type(pin)
        await term.expect(r"new PIN: $")
        await term.type("27182818")
        await term.expect(r"again: $")
        await term.type("27182818")
        await term.expect(r"dialbox> $")
        out = await term.command("show log 5")
        logged = [x for x in out.splitlines() if re.match(r"\d{4}-\d\d-\d\d \d\d:", x)]
        assert len(logged) == 5, out
        out = await term.command("show log 200")
        assert "console_login" in out  # the login just now is in it
        assert "Traceback" not in out and "{" not in out.split("\n", 1)[1][:1]
        out = await term.command("show boot")
        assert f"ok     console: {term.path} at 115200 8N1" in out
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        term.close()
    assert proc.returncode == 0, err.decode()[-2000:]


def _fake_tools(tmp_path, monkeypatch, *, fail: str = "") -> Path:
    """``ip`` and ``networkctl`` stand-ins first on PATH: each logs its arguments (one call a
    line) to tools.log; ``fail`` names one that then exits 2 with an iproute2-like message."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "tools.log"
    for tool in ("ip", "networkctl"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n' + (
            'echo "RTNETLINK answers: Operation not permitted" >&2\nexit 2\n'
            if tool == fail else ""), encoding="utf-8")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


async def test_set_ip_applies_the_address_through_networkd(tmp_path, monkeypatch):
    log = _fake_tools(tmp_path, monkeypatch)
    netdir = tmp_path / "systemd-network"
    cfg_text = ("network:\n  interface: enp1s0\n  address: 192.168.1.10/24\n  apply: true\n"
                f"  networkd_dir: {netdir}\n")
    async with box(tmp_path, cfg_text=cfg_text) as (app, term, _task):
        await first_login(app, term)
        out = await term.command("set ip 10.20.30.40/24 gw 10.20.30.1 dns 10.20.30.2")
        assert "applied to enp1s0 with systemd-networkd" in out, out
        unit = (netdir / "10-dialbox.network").read_text(encoding="utf-8")
        assert "[Match]\nName=enp1s0\n" in unit
        assert "Address=10.20.30.40/24\nGateway=10.20.30.1\nDNS=10.20.30.2\n" in unit
        assert log.read_text().splitlines() == ["networkctl reload",
                                                "networkctl reconfigure enp1s0"]
        out = await term.command("set ip 10.20.30.40/24 dns box.lan")
        assert "not an address" in out  # refused before anything is written or applied
        assert (netdir / "10-dialbox.network").read_text(encoding="utf-8") == unit
        assert len(log.read_text().splitlines()) == 2


async def test_set_ip_with_iproute2_and_its_failure_said(tmp_path, monkeypatch):
    from dialbox import netapply
    log = _fake_tools(tmp_path, monkeypatch)
    net = {"interface": "eth1", "address": "10.1.2.3/16", "gateway": "10.1.0.1",
           "dns": ["10.1.0.2"], "apply_with": "ip"}
    said = await netapply.apply(net)
    assert log.read_text().splitlines() == [
        "ip address flush dev eth1", "ip address add 10.1.2.3/16 dev eth1",
        "ip route replace default via 10.1.0.1 dev eth1"]
    assert "until the next boot" in said[0] and "DNS" in said[1]
    _fake_tools(tmp_path, monkeypatch, fail="ip")
    with pytest.raises(UserError, match="ip address flush dev eth1 failed: RTNETLINK answers: "
                                        "Operation not permitted"):
        await netapply.apply(net)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="networkctl is not available here"):
        await netapply.apply(dict(net, apply_with="networkd", networkd_dir=str(tmp_path / "n")))
