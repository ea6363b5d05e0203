"""The box's network address put into effect (console ``set ip``): systemd-networkd or iproute2.

``networkd`` (the default) writes ``10-dialbox.network`` for the interface into the networkd
directory (atomically) and has networkd reload and reconfigure it, so the address also holds
after a reboot; ``ip`` sets it at once with iproute2 and lasts until the next boot. The tools
are found on PATH, as the service's environment has them.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from firmware.errors import UserError

METHODS = ("networkd", "ip")
NETWORKD_DIR = "/etc/systemd/network"
UNIT_NAME = "10-dialbox.network"


async def apply(net: dict) -> list[str]:
    """Put ``net`` (the config's ``network`` section) into effect; what was done, to tell."""
    dev = net.get("interface", "eth0")
    method = net.get("apply_with", "networkd")
    if method == "ip":
        steps = [["ip", "address", "flush", "dev", dev],
                 ["ip", "address", "add", net["address"], "dev", dev]]
        if net.get("gateway"):
            steps.append(["ip", "route", "replace", "default", "via", net["gateway"], "dev", dev])
        for argv in steps:
            await _run(argv)
        said = [f"applied to {dev} with ip (until the next boot)"]
        if net.get("dns"):
            said.append("DNS servers are not set by ip: use apply_with: networkd")
        return said
    unit = Path(net.get("networkd_dir") or NETWORKD_DIR) / UNIT_NAME
    await asyncio.to_thread(_write_unit, unit, network_unit(net))
    await _run(["networkctl", "reload"])
    await _run(["networkctl", "reconfigure", dev])
    return [f"applied to {dev} with systemd-networkd ({unit})"]


def network_unit(net: dict) -> str:
    """The networkd unit for the section: the interface, its address, gateway and DNS."""
    lines = ["# Written by dialbox (console 'set ip'); the config file is the source.",
             "[Match]", f"Name={net.get('interface', 'eth0')}", "", "[Network]",
             f"Address={net['address']}"]
    if net.get("gateway"):
        lines.append(f"Gateway={net['gateway']}")
    lines += [f"DNS={server}" for server in net.get("dns") or []]
    return "\n".join(lines) + "\n"


def _write_unit(path: Path, text: str) -> None:
    from dialbox.config import write_atomic
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text, mode=0o644)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


async def _run(argv: list[str]) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
    except OSError as exc:
        raise UserError(f"{argv[0]} is not available here: {exc.strerror or exc}") from None
    out, _ = await proc.communicate()
    if proc.returncode:
        raise UserError(f"{' '.join(argv)} failed: {out.decode(errors='replace').strip()}")
