"""A site's certificates: its own CA, and central's certificate signed by it (deploy/provision.sh).

    python -m evd.pki ca DIR                    # DIR/ca.pem (give it to the CP machines), DIR/ca.key
    python -m evd.pki cert DIR NAME HOST...     # DIR/NAME.pem + DIR/NAME.key for those names/addresses

Both are idempotent: an existing CA is kept, and a certificate is issued again only when it
does not cover the hosts asked for or expires within 30 days. Keys are written mode 0600.
"""

import argparse
import datetime
import ipaddress
import os
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
CERT_DAYS = 825  # the longest validity clients accept for a server certificate
RENEW_BEFORE = datetime.timedelta(days=30)


def make_ca(directory, name="EVCharging site CA"):
    """The site CA in ``directory`` (ca.pem, ca.key), made once; returns the path of ca.pem."""
    directory = pathlib.Path(directory)
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _builder(subject, subject, key.public_key(), CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**_usage(key_cert_sign=True, crl_sign=True)), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory, key_path, cert_path, key, cert)
    return cert_path


def issue(directory, name, hosts):
    """``name``.pem/.key in ``directory`` for ``hosts`` (IP addresses or DNS names), signed by the site CA."""
    directory = pathlib.Path(directory)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    names = [_general_name(host) for host in hosts]
    if cert_path.exists() and key_path.exists() and _still_good(cert_path, names):
        return cert_path
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), CERT_DAYS)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**_usage(digital_signature=True)), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory, key_path, cert_path, key, cert)
    return cert_path


def _builder(subject, issuer, public_key, days):
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks of the site's machines differ a little
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _usage(**granted):
    usages = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
    flags = dict.fromkeys((*usages, "key_cert_sign", "crl_sign"), False)
    return {**flags, **granted, "encipher_only": False, "decipher_only": False}


def _general_name(host):
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _still_good(cert_path, names):
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        covered = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return False
    fresh = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > RENEW_BEFORE
    return fresh and set(names) <= covered


def _write(directory, key_path, cert_path, key, cert):
    directory.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m evd.pki", description="A site CA and the certificates it signs.")
    commands = parser.add_subparsers(dest="command", required=True)
    ca = commands.add_parser("ca", help="make the site CA in DIR (once)")
    ca.add_argument("directory", metavar="DIR")
    cert = commands.add_parser("cert", help="issue DIR/NAME.pem and DIR/NAME.key for HOSTs, signed by DIR's CA")
    cert.add_argument("directory", metavar="DIR")
    cert.add_argument("name", metavar="NAME")
    cert.add_argument("hosts", metavar="HOST", nargs="+", help="an IP address or DNS name clients connect to")
    args = parser.parse_args(argv)
    try:
        if args.command == "ca":
            print(make_ca(args.directory))
        else:
            print(issue(args.directory, args.name, args.hosts))
    except FileNotFoundError as e:
        print(f"evd.pki: {e.filename}: no such file (make the CA first: python -m evd.pki ca DIR)", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"evd.pki: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
