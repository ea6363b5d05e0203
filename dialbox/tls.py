"""HTTPS for the office network: the box's own certificate authority and server certificate.

Browsers give a page the microphone only in a secure context, and 127.0.0.1 is the only address
that is one without TLS. So on first start the box makes a CA (kept in ``<data>/tls``, its key
readable by the owner only) and a server certificate for its host names and addresses, signed by
that CA. The office PCs install the CA once (the admin page offers it); a certificate the shop
brings (``--tls-cert``/``--tls-key``) is used instead when given.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from firmware.errors import UserError

CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers accept for a server certificate
RENEW_DAYS = 30  # a server certificate this close to its end is made anew at start
CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.crt", "server.key"


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # the server certificate (chain) the box presents
    key: Path
    ca: Path | None  # the box's own CA certificate; None when the shop's certificate is used

    def server_context(self) -> ssl.SSLContext:
        """The context an HTTPS site serves with."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.cert, self.key)
        except (ssl.SSLError, OSError) as exc:
            raise UserError(f"{self.cert}, {self.key}: cannot serve HTTPS with this certificate "
                            f"and key ({exc}); check that the key belongs to the certificate "
                            "and both are PEM files") from None
        return ctx


def local_names() -> tuple[list[str], list[str]]:
    """The host names and addresses this box is reached by: (DNS names, IP addresses)."""
    import ifaddr
    names = {"localhost"}
    for name in (socket.gethostname(), socket.getfqdn()):
        if name and not is_ip(name):
            names.add(name.lower())
    addresses = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            addr = ipaddress.ip_address(text.split("%")[0])
            if not addr.is_link_local:
                addresses.add(str(addr))
    addresses.add("127.0.0.1")
    return sorted(names), sorted(addresses, key=lambda a: (":" in a, a))


def ensure(data: Path, *, now: float, names: list[str], addresses: list[str],
           shop_cert: Path | None = None, shop_key: Path | None = None) -> TlsFiles:
    """The certificate to serve: the shop's if given, else the box's own (made or renewed here)."""
    if (shop_cert is None) != (shop_key is None):
        raise UserError("--tls-cert and --tls-key go together: give the shop's certificate and "
                        "its private key")
    if shop_cert is not None:
        files = TlsFiles(Path(shop_cert), Path(shop_key), None)
        files.server_context()  # refuse a broken pair at start, not at the first browser
        return files
    folder = Path(data) / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    ca_cert, ca_key = _ensure_ca(folder, when)
    cert_path = folder / SERVER_CERT
    if not _server_cert_fits(cert_path, ca_cert, when, names, addresses):
        _issue_server(folder, ca_cert, ca_key, when, names, addresses)
    return TlsFiles(cert_path, folder / SERVER_KEY, folder / CA_CERT)


def covers(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """The DNS names and IP addresses a certificate is valid for."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return ({n.lower() for n in san.get_values_for_type(x509.DNSName)},
            {str(a) for a in san.get_values_for_type(x509.IPAddress)})


# --- the CA and the server certificate ---------------------------------------------------------
def _ensure_ca(folder: Path, when: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if cert.not_valid_after_utc > when + dt.timedelta(days=SERVER_DAYS):
            return cert, key  # type: ignore[return-value]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dialbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"dialbox CA {socket.gethostname()} {when:%Y-%m-%d}")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(when - dt.timedelta(hours=1))
            .not_valid_after(when + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / SERVER_CERT).unlink(missing_ok=True)  # signed by the old CA: make it anew
    return cert, key


def _server_cert_fits(path: Path, ca: x509.Certificate, when: dt.datetime, names: list[str],
                      addresses: list[str]) -> bool:
    if not path.exists() or not path.with_name(SERVER_KEY).exists():
        return False
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return False
    dns, ips = covers(cert)
    return (cert.issuer == ca.subject
            and cert.not_valid_after_utc > when + dt.timedelta(days=RENEW_DAYS)
            and {n.lower() for n in names} <= dns and set(addresses) <= ips)


def _issue_server(folder: Path, ca: x509.Certificate, ca_key, when: dt.datetime,
                  names: list[str], addresses: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a))
                                               for a in addresses]
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dialbox"),
                         x509.NameAttribute(NameOID.COMMON_NAME, (names or addresses)[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(when - dt.timedelta(hours=1))
            .not_valid_after(when + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(folder / SERVER_KEY, key)
    (folder / SERVER_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key) -> None:
    """A private key, readable by the owner only from the first byte on."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.replace(tmp, path)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
