"""HTTPS on the office network: the box's CA verifies its server certificate; LAN HTTP redirects."""
from __future__ import annotations

import asyncio
import signal
import ssl
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from controller import users
from controller.store import Store
from dialbox import tls
from firmware.errors import UserError
from tests.fake_backend import FakeBackend
from web_admin.app import make_app
from web_admin.https import Https

NOW = 1_790_000_000.0  # a fixed moment: the test passes on any date
NAMES, ADDRESSES = ["localhost", "dialbox.office.lan"], ["127.0.0.1", "::1"]


# The box's "LAN address" in these tests: 127.0.0.2 is on this machine's loopback, and the box is
# told that only 127.0.0.1 counts as the browser's secure context, so a request that arrives on
# 127.0.0.2 takes the LAN path (tests never serve on, or connect to, a real LAN address).
LAN = "127.0.0.2"
PLAIN_ONLY_ON = ("127.0.0.1/32", "::1/128")


def handshake(port: int, ctx: ssl.SSLContext, server_hostname: str) -> dict:
    """A TLS handshake with 127.0.0.1:port; the peer certificate as the ssl module saw it."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            return s.getpeercert()


async def serve_tls(files: tls.TlsFiles):
    runner = web.AppRunner(web.Application(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=files.server_context())
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


async def test_first_start_makes_a_ca_that_verifies_the_server_certificate(tmp_path):
    files = tls.ensure(tmp_path, now=NOW, names=NAMES, addresses=ADDRESSES)
    folder = tmp_path / "tls"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for key in (tls.CA_KEY, tls.SERVER_KEY):
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600  # owner only
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert tls.covers(cert) == ({"localhost", "dialbox.office.lan"}, {"127.0.0.1", "::1"})
    runner, port = await serve_tls(files)
    try:
        trusting = ssl.create_default_context(cafile=str(files.ca))
        for name in ("localhost", "dialbox.office.lan", "127.0.0.1"):
            peer = await asyncio.to_thread(handshake, port, trusting, name)
            assert ("DNS", "dialbox.office.lan") in peer["subjectAltName"]
        with pytest.raises(ssl.SSLCertVerificationError):  # a name the box is not
            await asyncio.to_thread(handshake, port, trusting, "bank.example")
        with pytest.raises(ssl.SSLCertVerificationError):  # a PC that has not installed the CA
            await asyncio.to_thread(handshake, port, ssl.create_default_context(), "localhost")
    finally:
        await runner.cleanup()


def test_restart_keeps_the_certificate_and_a_new_address_gets_a_new_one(tmp_path):
    first = tls.ensure(tmp_path, now=NOW, names=NAMES, addresses=ADDRESSES)
    ca_pem, cert_pem = first.ca.read_bytes(), first.cert.read_bytes()
    again = tls.ensure(tmp_path, now=NOW + 86400, names=NAMES, addresses=ADDRESSES)
    assert again.cert.read_bytes() == cert_pem  # the PCs keep trusting what they have
    moved = tls.ensure(tmp_path, now=NOW + 86400, names=NAMES,
                       addresses=ADDRESSES + ["192.168.7.20"])
    assert moved.ca.read_bytes() == ca_pem  # the same CA: nothing to reinstall
    cert = x509.load_pem_x509_certificate(moved.cert.read_bytes())
    assert "192.168.7.20" in tls.covers(cert)[1]
    # close to its end the server certificate is made anew, still under the same CA
    late = tls.ensure(tmp_path, now=NOW + 380 * 86400, names=NAMES,
                      addresses=ADDRESSES + ["192.168.7.20"])
    renewed = x509.load_pem_x509_certificate(late.cert.read_bytes())
    assert renewed.serial_number != cert.serial_number and late.ca.read_bytes() == ca_pem


async def test_the_shops_own_certificate_is_served_instead(tmp_path):
    shop = tls.ensure(tmp_path / "shop", now=NOW, names=["crm.shop.lan", "localhost"],
                      addresses=["127.0.0.1"])  # stands for the shop's own PKI
    files = tls.ensure(tmp_path / "box", now=NOW, names=NAMES, addresses=ADDRESSES,
                       shop_cert=shop.cert, shop_key=shop.key)
    assert files.ca is None and not (tmp_path / "box" / "tls").exists()
    runner, port = await serve_tls(files)
    try:
        peer = await asyncio.to_thread(
            handshake, port, ssl.create_default_context(cafile=str(shop.ca)), "localhost")
        assert ("DNS", "crm.shop.lan") in peer["subjectAltName"]
    finally:
        await runner.cleanup()
    other = tls.ensure(tmp_path / "other", now=NOW, names=NAMES, addresses=ADDRESSES)
    with pytest.raises(UserError, match="key belongs to the certificate"):
        tls.ensure(tmp_path / "box", now=NOW, names=NAMES, addresses=ADDRESSES,
                   shop_cert=shop.cert, shop_key=other.key)
    with pytest.raises(UserError, match="go together"):
        tls.ensure(tmp_path / "box", now=NOW, names=NAMES, addresses=ADDRESSES,
                   shop_cert=shop.cert)


async def test_https_from_the_config_file_serves_the_shops_certificate(tmp_path):
    """``https:`` in the appliance config: where, and the shop's certificate (paths relative to
    the config); ``--https`` on the command line overrides the address."""
    from dialbox.cli import build_parser
    from dialbox.cmd_run import merged_config, web_tls
    from tests.runbox import free_port
    shop = tls.ensure(tmp_path / "shop", now=NOW, names=["crm.shop.lan", "localhost"],
                      addresses=["127.0.0.1"])
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "shop.crt").write_bytes(shop.cert.read_bytes())
    (etc / "shop.key").write_bytes(shop.key.read_bytes())
    port = free_port()
    f = etc / "dialbox.yaml"
    f.write_text(f"data: {tmp_path / 'd'}\nlisten: 127.0.0.1:{free_port()}\nhttps:\n"
                 f"  listen: 127.0.0.1:{port}\n  cert: shop.crt\n  key: shop.key\n",
                 encoding="utf-8")
    cfg = merged_config(build_parser().parse_args(["run", "--config", str(f)]))
    https, (host, sport, ctx) = web_tls(cfg)
    assert (host, sport) == ("127.0.0.1", port) and https.port == port
    runner = web.AppRunner(web.Application(), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, sport, ssl_context=ctx).start()
    try:
        peer = await asyncio.to_thread(
            handshake, sport, ssl.create_default_context(cafile=str(shop.ca)), "localhost")
        assert ("DNS", "crm.shop.lan") in peer["subjectAltName"]
    finally:
        await runner.cleanup()
    other = free_port()
    cfg = merged_config(build_parser().parse_args(["run", "--config", str(f), "--https",
                                                   f"127.0.0.1:{other}"]))
    assert cfg.https_listen == f"127.0.0.1:{other}" and cfg.https_cert == etc / "shop.crt"


@pytest.fixture
async def lan_sites(tmp_path):
    """The web admin on plain HTTP (the LAN address and loopback) and on HTTPS (the LAN
    address): (lan, http port, https port, ca)."""
    from tests.test_cli_run import free_port
    lan = LAN
    files = tls.ensure(tmp_path, now=NOW, names=NAMES, addresses=[lan, "127.0.0.1"])
    store = Store(tmp_path / "db.sqlite3")
    port, sport = free_port(), free_port()
    runner = web.AppRunner(make_app(FakeBackend(store), tls=Https(
        port=sport, ca=files.ca, plain_networks=PLAIN_ONLY_ON)), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, lan, sport, ssl_context=files.server_context()).start()
    await web.TCPSite(runner, lan, port).start()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield lan, port, sport, files.ca
    await runner.cleanup()
    store.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def fetch(url: str, *, cafile: Path | None = None, follow: bool = False):
    """(status, Location, body) of a GET, without following redirects unless asked."""
    handlers = [urllib.request.HTTPSHandler(
        context=ssl.create_default_context(cafile=str(cafile)) if cafile else None)]
    if not follow:
        handlers.append(_NoRedirect())
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=5) as r:
            return r.status, r.headers.get("Location"), r.read(), r.url
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location"), e.read(), url


async def test_plain_http_on_the_lan_redirects_to_https_and_loopback_stays(lan_sites):
    lan, port, sport, ca = lan_sites
    status, location, _, _ = await asyncio.to_thread(fetch, f"http://{lan}:{port}/desk?x=1")
    assert status == 307 and location == f"https://{lan}:{sport}/desk?x=1"
    # followed, with the box's CA installed: the sign-in page over a verified connection
    status, _, body, url = await asyncio.to_thread(fetch, f"http://{lan}:{port}/desk",
                                                   cafile=ca, follow=True)
    assert status == 200 and url == f"https://{lan}:{sport}/login" and b"password" in body
    # 127.0.0.1 is a secure context already: no redirect there
    status, location, _, _ = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/desk")
    assert status == 302 and location == "/login"
    # the CA itself comes over plain HTTP, so a PC can fetch it before it trusts the box
    status, _, body, _ = await asyncio.to_thread(fetch, f"http://{lan}:{port}/tls/ca.crt")
    assert status == 200 and body == ca.read_bytes()


async def test_admin_page_offers_the_ca_with_its_fingerprint(aiohttp_client, tmp_path):
    files = tls.ensure(tmp_path, now=NOW, names=NAMES, addresses=ADDRESSES)
    store = Store(tmp_path / "db.sqlite3")
    users.add(store, "root", "correct horse battery", role="admin")
    users.add(store, "olga", "correct horse battery", role="operator")
    client = await aiohttp_client(make_app(FakeBackend(store), tls=Https(port=8443, ca=files.ca)))
    try:
        async def login(name: str):
            client.session.cookie_jar.clear()
            form = await client.get("/login")
            token = client.session.cookie_jar.filter_cookies(form.url)["dialbox_login_csrf"].value
            await client.post("/login", data={"username": name, "password":
                                              "correct horse battery", "csrf": token})
        await login("olga")
        assert (await client.get("/tls", allow_redirects=False)).status == 403
        await login("root")
        html = await (await client.get("/tls?lang=en")).text()
        fp = x509.load_pem_x509_certificate(files.ca.read_bytes()).fingerprint(hashes.SHA256())
        assert fp.hex().upper()[:8] in html.replace(":", "")
        assert "Trusted Root Certification Authorities" in html and "update-ca-certificates" in html
        html = await (await client.get("/tls?lang=ru")).text()
        assert "Доверенные корневые центры сертификации" in html
        got = await client.get("/tls/ca.crt")
        assert got.headers["Content-Type"] == "application/x-x509-ca-cert"
        assert await got.read() == files.ca.read_bytes()
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_run_serves_https_with_its_own_ca(tmp_path):
    """`dialbox run --https`: the CA the box made verifies its server (on loopback; the LAN
    redirect itself is shown by test_plain_http_on_the_lan_redirects_to_https...)."""
    from tests.test_cli_run import free_port
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", "run", "--simulate", "--http", f"127.0.0.1:{port}",
        "--https", f"127.0.0.1:{free_port()}",
        "--data", str(tmp_path / "d"), "--operators", "0", "--compliance", "none",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 40)).decode()
        sport = int(line.split("https://127.0.0.1:")[1].split("/")[0])
        ca = tmp_path / "d" / "tls" / "ca.crt"
        status, _, body, _ = await asyncio.to_thread(fetch, f"https://127.0.0.1:{sport}/healthz",
                                                     cafile=ca)
        assert status == 200 and b'"lines"' in body
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch(f"https://127.0.0.1:{sport}/healthz")  # without the box's CA: not trusted
        status, location, _, _ = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/")
        assert status == 302 and location == "/login"  # loopback stays plain: no redirect
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0 and b"Traceback" not in err


def test_https_by_default_only_beside_a_lan_address():
    from dialbox.cmd_run import https_bind
    assert https_bind(("127.0.0.1", 8080), None) is None
    assert https_bind(("localhost", 8080), None) is None
    assert https_bind(("0.0.0.0", 8080), None) == ("0.0.0.0", 8443)
    assert https_bind(("192.168.1.5", 80), None) == ("192.168.1.5", 8443)
    assert https_bind(("127.0.0.1", 8080), "127.0.0.1:9443") == ("127.0.0.1", 9443)
