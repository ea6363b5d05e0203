"""HTTPS in the web admin: plain HTTP on a LAN address redirects, the box's CA for the office PCs."""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from web_admin.render import render, secure

PLAIN_OK = ("/healthz", "/tls/ca.crt")  # monitoring, and the CA a PC needs before it trusts us


@dataclass(frozen=True)
class Https:
    """How the box serves HTTPS: the port plain HTTP redirects to, and the CA to hand out."""
    port: int | None = None  # None: no HTTPS site (loopback only)
    ca: Path | None = None  # the box's CA certificate; None with the shop's own certificate
    # Where plain HTTP may stay plain: the browser treats loopback as a secure context already.
    plain_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


HTTPS = web.AppKey("https", Https)


@web.middleware
async def redirect_middleware(request: web.Request, handler):
    """Plain HTTP that arrived on a LAN address goes to HTTPS; loopback stays plain (a secure
    context already)."""
    port = request.app[HTTPS].port
    if port is None or request.secure or request.path in PLAIN_OK:
        return await handler(request)
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    if not sock or _within(sock[0], request.app[HTTPS].plain_networks):
        return await handler(request)
    host = request.url.host or sock[0]
    if ":" in host:
        host = f"[{host}]"
    raise web.HTTPTemporaryRedirect(f"https://{host}:{port}{request.rel_url}")


async def page(request: web.Request) -> web.Response:
    """The CA certificate to install on the office PCs, its fingerprint, and how."""
    ca = request.app[HTTPS].ca
    fingerprint = None
    if ca is not None and ca.exists():
        der = _der(ca.read_bytes())
        digest = hashlib.sha256(der).hexdigest().upper()
        fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    return render("tls.html", request, {"https_port": request.app[HTTPS].port,
                                        "ca": ca is not None, "fingerprint": fingerprint})


async def ca_cert(request: web.Request) -> web.StreamResponse:
    """The box's CA certificate (public: it holds no secret)."""
    ca = request.app[HTTPS].ca
    if ca is None or not ca.exists():
        raise web.HTTPNotFound()
    return secure(web.Response(body=ca.read_bytes(), headers={
        "Content-Type": "application/x-x509-ca-cert",
        "Content-Disposition": 'attachment; filename="dialbox-ca.crt"'}))


def _within(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n) for n in networks)


def _der(pem: bytes) -> bytes:
    import base64
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    return base64.b64decode(body)
