"""The console's commands: the same truth as the dashboard, and the field-service actions."""
from __future__ import annotations

import asyncio
import ipaddress
import shlex
import time
import uuid
from pathlib import Path

from controller import users
from firmware.errors import UserError

HELP = (
    ("show status", "the box at a glance: lines, campaigns, operators, clock, failures"),
    ("show lines", "every line with its number, state and reason"),
    ("show line N", "one line in detail (N: number from 'show lines', or its name)"),
    ("show sims", "SIM cards: registration, signal, operator, balance"),
    ("show spans", "E1 spans: D-channel link, channels in service"),
    ("show campaigns", "campaigns: running or paused, counters"),
    ("show log [N]", "the last N log lines (default 20)"),
    ("show boot", "what started at boot, what failed and why"),
    ("show recordings", "recordings on disk: how many, how much space"),
    ("test call LINE NUMBER", "one test call on a line; the outcome"),
    ("test sms LINE NUMBER TEXT", "one test SMS from a line"),
    ("reset line N", "re-initialise a line's module (GSM) or restart the channel (E1)"),
    ("block line N / unblock line N", "take a line out of use, or back"),
    ("set ip ADDRESS/PREFIX [gw GATEWAY] [dns SERVER]", "the box's network address (config)"),
    ("set admin-password", "a new password for the web admin's 'admin'"),
    ("pause all / resume all", "pause or resume every campaign"),
    ("reboot", "restart the appliance"),
    ("logout", "end the session"),
)


def banner(app) -> list[str]:
    h = app.health()
    return [f"dialbox field-service console: {h['lines']['in_service']}/{h['lines']['total']} "
            f"lines in service, status {h['status']}"]


async def run_command(con, line: str) -> bool:
    """Run one command line; False when the session ends."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UserError(f"cannot read the line: {exc}") from None
    if not words:
        return True
    head = words[0].lower()
    if head in ("logout", "exit", "quit"):
        return False
    if head in ("help", "?"):
        width = max(len(c) for c, _ in HELP)
        con.say(*(f"  {c:<{width}}  {what}" for c, what in HELP))
        return True
    key = " ".join(w.lower() for w in words[:2])
    handler = _COMMANDS.get(key)
    if handler is None:
        from firmware.yamlsrc import suggest
        raise UserError(f"unknown command {' '.join(words[:2])!r}"
                        f"{suggest(key, _COMMANDS)}; type 'help'")
    await handler(con, words[2:])
    return True


# --- show ---------------------------------------------------------------------------------------
async def show_status(con, args) -> None:
    app = con.app
    st = await _maybe(getattr(app, "status_live", app.status)())  # counts off the loop
    h = st["health"]
    con.say(f"status      {h['status']}, up {_duration(h['uptime_s'])}, core {h['core']}")
    con.say(f"lines       {h['lines']['in_service']}/{h['lines']['total']} in service")
    states: dict[str, int] = {}
    for ln in st["lines"]:
        states[ln["state"]] = states.get(ln["state"], 0) + 1
    con.say("            " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    for c in await _maybe(app.campaigns()):
        cnt = c["counters"]
        con.say(f"campaign    {c['name']}: {c['status']}, {c['mode']}, attempts "
                f"{cnt.get('attempts', 0)}, answered {cnt.get('answered', 0)}, "
                f"abandoned {cnt.get('abandoned', 0)}")
    ops: dict[str, int] = {}
    for op in st["operators"]:
        ops[op["state"]] = ops.get(op["state"], 0) + 1
    con.say("operators   " + (", ".join(f"{k} {v}" for k, v in sorted(ops.items())) or "none"))
    box = st.get("box") or {}
    clock = box.get("clock")
    if clock:
        con.say(f"clock       {clock['text']}")
    if box.get("boot_failed"):
        con.say(f"boot        {len(box['boot_failed'])} part(s) failed: 'show boot'")
    for t in box.get("tasks_failing", []):
        con.say(f"task        {t['name']}: {t['failures']} failure(s), last: {t['last_error']}")


async def show_lines(con, args) -> None:
    rows = [("#", "line", "kind", "state", "signal", "reason")]
    for i, ln in enumerate(con.app.lines.lines(), 1):
        sig = ln.details.get("signal_dbm")
        rows.append((str(i), ln.name, ln.kind, ln.state, "" if sig is None else f"{sig} dBm",
                     ln.reason or ""))
    con.say(*_table(rows))


async def show_line(con, args) -> None:
    name = _line_name(con, args)
    ln = next(x for x in con.app.lines.lines() if x.name == name)
    con.say(f"line        {ln.name} ({ln.kind})", f"state       {ln.state}"
            + ("" if ln.in_service else " (out of service)"))
    if ln.reason:
        con.say(f"reason      {ln.reason}")
    if ln.call_id:
        con.say(f"call        {ln.call_id}")
    for k, v in sorted(ln.details.items()):
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        con.say(f"{k:<11} {v}")


async def show_sims(con, args) -> None:
    rows = [("line", "sim", "registration", "operator", "signal", "balance", "imsi")]
    for ln in con.app.lines.lines():
        if ln.kind != "gsm":
            continue
        d = ln.details
        sig = d.get("signal_dbm")
        rows.append((ln.name, str(d.get("sim") or "-"), str(d.get("registration") or "-"),
                     str(d.get("operator") or "-"), "-" if sig is None else f"{sig} dBm",
                     str(d.get("balance") or "-"), str(d.get("imsi") or "-")))
    con.say(*(_table(rows) if len(rows) > 1 else ["no GSM lines"]))


async def show_spans(con, args) -> None:
    spans: dict[str, dict] = {}
    for ln in con.app.lines.lines():
        if ln.kind != "e1":
            continue
        d = ln.details
        s = spans.setdefault(d.get("span", ln.name.split("/")[0]),
                             {"link": d.get("link"), "up": 0, "total": 0, "busy": 0,
                              "counters": d.get("span_counters", {})})
        s["total"] += 1
        s["up"] += int(ln.in_service)
        s["busy"] += int(ln.call_id is not None)
    if not spans:
        con.say("no E1 spans")
        return
    rows = [("span", "D-channel", "in service", "calls", "link losses", "restarts")]
    for name, s in spans.items():
        rows.append((name, str(s["link"]), f"{s['up']}/{s['total']}", str(s["busy"]),
                     str(s["counters"].get("link_losses", 0)),
                     str(s["counters"].get("restarts", 0))))
    con.say(*_table(rows))


async def show_campaigns(con, args) -> None:
    rows = [("campaign", "status", "mode", "compliance", "attempts", "answered", "abandoned",
             "backlog")]
    for c in await _maybe(con.app.campaigns()):
        cnt = c["counters"]
        rows.append((c["name"], c["status"], c["mode"], c["compliance"],
                     str(cnt.get("attempts", 0)), str(cnt.get("answered", 0)),
                     str(cnt.get("abandoned", 0)), str(c.get("backlog", ""))))
    con.say(*_table(rows))


async def show_log(con, args) -> None:
    n = _int(args[0], "N") if args else 20
    ring = con.app.runtime.extras.get("log")
    lines = ring.tail(n) if ring is not None else []
    con.say(*(lines or ["no log lines kept"]))


async def show_boot(con, args) -> None:
    con.say(*con.app.runtime.boot.text())


async def show_recordings(con, args) -> None:
    cfg = con.app.runtime.config
    root = Path(cfg.data) / "recordings"
    count = size = 0
    newest = 0.0
    if root.is_dir():
        for p in root.rglob("*"):
            if p.is_file():
                st = p.stat()
                count += 1
                size += st.st_size
                newest = max(newest, st.st_mtime)
    con.say(f"recordings  {count} file(s), {size / 1e6:.1f} MB in {root}")
    if newest:
        con.say(f"newest      {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(newest))}")
    con.say(f"kept        {cfg.recordings_days} days")


# --- actions --------------------------------------------------------------------------------------
async def test_call(con, args) -> None:
    if len(args) != 2:
        raise UserError("usage: test call LINE NUMBER")
    line = _line_name(con, args[:1])
    con.say(f"calling {args[1]} on {line} (Ctrl-C stops waiting)...")
    await con.audit(action="test_call", obj="line", key=line, after={"number": args[1]})
    result = await con.app.line_action(line, "test_call", number=args[1])
    con.say(f"result      {result['result']}" + (f" (cause {result['cause']}: "
                                                  f"{result['reason']})" if result.get("cause")
                                                 else ""),
            f"ringing     {result['ring_s']} s, talk {result['talk_s']} s")


async def test_sms(con, args) -> None:
    if len(args) < 3:
        raise UserError("usage: test sms LINE NUMBER TEXT")
    line = _line_name(con, args[:1])
    text = " ".join(args[2:])
    await con.audit(action="test_sms", obj="line", key=line, after={"number": args[1]})
    from firmware.lineapi import LineError
    try:
        result = await con.app.lines.send_sms(line, args[1], text,
                                              sms_id=f"console-{uuid.uuid4().hex[:8]}")
    except LineError as exc:
        raise UserError(str(exc)) from None
    parts = (result or {}).get("parts") or (result or {}).get("references") or []
    con.say(f"sent from {line}" + (f" in {len(parts)} part(s)" if parts else ""))


async def reset_line(con, args) -> None:
    line = _line_name(con, args)
    await con.audit(action="reset", obj="line", key=line,
                    before={"state": con.app.lines.state(line)})
    done = await con.app.line_action(line, "reset", reason="asked at the console")  # as the web
    if done["reset"] == "module":
        con.say(f"{line}: module re-initialising; 'show line {line}' follows it")
    else:
        con.say(f"{line}: channel restarted (RESTART sent)")


async def block_line(con, args) -> None:
    line = _line_name(con, args)
    before = con.app.lines.state(line)
    await con.app.line_action(line, "block")
    await con.audit(action="block", obj="line", key=line, before={"state": before},
                    after={"state": "blocked"})
    con.say(f"{line} blocked")


async def unblock_line(con, args) -> None:
    line = _line_name(con, args)
    before = con.app.lines.state(line)
    await con.app.line_action(line, "unblock")
    await con.audit(action="unblock", obj="line", key=line, before={"state": before})
    con.say(f"{line} unblocked")


async def set_ip(con, args) -> None:
    if not args:
        raise UserError("usage: set ip ADDRESS/PREFIX [gw GATEWAY] [dns SERVER]")
    from dialbox import config
    try:
        addr = ipaddress.ip_interface(args[0])
    except ValueError:
        raise UserError(f"{args[0]!r} is not an address with a prefix, e.g. "
                        "192.168.1.10/24") from None
    if "/" not in args[0]:
        raise UserError("give the prefix too, e.g. 192.168.1.10/24")
    opts = dict(zip(args[1::2], args[2::2]))
    unknown = set(opts) - {"gw", "dns"}
    if unknown or len(args[1:]) % 2:
        raise UserError("usage: set ip ADDRESS/PREFIX [gw GATEWAY] [dns SERVER]")
    cfg = con.app.runtime.config
    if not cfg.source:
        raise UserError("this box runs without a config file (--config): nothing to save to")
    before = dict(cfg.network)
    after = dict(before, address=str(addr))
    after.setdefault("interface", "eth0")
    if "gw" in opts:
        try:
            ipaddress.ip_address(opts["gw"])
        except ValueError:
            raise UserError(f"gateway {opts['gw']!r} is not an address") from None
        after["gateway"] = opts["gw"]
    if "dns" in opts:
        try:
            ipaddress.ip_address(opts["dns"])
        except ValueError:
            raise UserError(f"DNS server {opts['dns']!r} is not an address") from None
        after["dns"] = [opts["dns"]]
    await asyncio.to_thread(config.update, cfg.source, {"network": after})
    cfg.network = after
    await con.audit(action="set_ip", obj="setting", key="network", before=before, after=after)
    con.say(f"saved to {cfg.source} (the previous version kept as {Path(cfg.source).name}.prev)")
    if after.get("apply"):
        from dialbox import netapply
        for line in await netapply.apply(after):
            con.say(line)
    else:
        con.say("not applied now (network.apply is off): the system's network setup reads it")


async def set_admin_password(con, args) -> None:
    if args:
        raise UserError("usage: set admin-password (you are asked for it, it is not echoed)")
    first = await con.ask("new password for 'admin': ", hidden=True)
    if first is None:
        return
    again = await con.ask("again: ", hidden=True)
    if again is None:
        return
    if first != again:
        raise UserError("the two passwords differ; nothing changed")
    hashed = await asyncio.to_thread(users.hash_password, first)
    await con.app.store.run(users.set_password_hash, "admin", hashed)
    await con.audit(action="password_set", obj="user", key="admin")
    con.say("the admin password is changed; admin's open sessions are closed")


async def pause_all(con, args) -> None:
    await _all_campaigns(con, args, "pause", "running")


async def resume_all(con, args) -> None:
    await _all_campaigns(con, args, "start", "paused")


async def _all_campaigns(con, args, action: str, status: str) -> None:
    if args:
        raise UserError(f"usage: {'pause' if action == 'pause' else 'resume'} all")
    done = []
    for c in await _maybe(con.app.campaigns()):
        if c["status"] != status:
            continue
        await _maybe(con.app.campaign_action(c["name"], action))
        await con.audit(action=action, obj="campaign", key=c["name"],
                        before={"status": status},
                        after={"status": "paused" if action == "pause" else "running"})
        done.append(c["name"])
    verb = "paused" if action == "pause" else "resumed"
    con.say(f"{verb}: {', '.join(done)}" if done else f"nothing to {action}")


async def reboot(con, args) -> None:
    answer = await con.ask("restart the appliance now? calls in progress are hung up [yes/no]: ")
    if (answer or "").strip().lower() != "yes":
        con.say("not restarted")
        return
    await con.audit(action="reboot", obj="console")
    con.say("restarting...")
    con.app.runtime.request_stop(exit_code=REBOOT_EXIT)


REBOOT_EXIT = 75  # systemd's Restart= starts the box again


_COMMANDS = {
    "show status": show_status, "show lines": show_lines, "show line": show_line,
    "show sims": show_sims, "show spans": show_spans, "show campaigns": show_campaigns,
    "show log": show_log, "show boot": show_boot, "show recordings": show_recordings,
    "test call": test_call, "test sms": test_sms, "reset line": reset_line,
    "block line": block_line, "unblock line": unblock_line, "set ip": set_ip,
    "set admin-password": set_admin_password, "pause all": pause_all,
    "resume all": resume_all, "reboot": reboot,
}


# --- helpers --------------------------------------------------------------------------------------
async def _maybe(value):
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


def _line_name(con, args) -> str:
    """A line by its number in 'show lines' or by its name."""
    if not args:
        raise UserError("which line? give its number from 'show lines' or its name")
    names = [ln.name for ln in con.app.lines.lines()]
    word = args[0]
    if word.isdigit() and 1 <= int(word) <= len(names):
        return names[int(word) - 1]
    if word in names:
        return word
    from firmware.yamlsrc import suggest
    raise UserError(f"no line {word!r}{suggest(word, names)}; 'show lines' lists them")


def _int(text: str, name: str) -> int:
    if not text.isdigit():
        raise UserError(f"{name} must be a number, got {text!r}")
    return int(text)


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 86400}d {s % 86400 // 3600}h {s % 3600 // 60}m" if s >= 86400 else \
        f"{s // 3600}h {s % 3600 // 60}m {s % 60}s"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
