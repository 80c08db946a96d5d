"""evd.pki: the site CA and central's certificate that deploy/provision.sh makes."""

import ssl
import stat

from cryptography import x509

from evd import pki


def names_in(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in san}


def test_a_certificate_is_trusted_through_the_ca_and_keys_are_private(tmp_path):
    ca = pki.make_ca(tmp_path)
    cert = pki.issue(tmp_path, "central", ["10.0.0.1", "central.lab"])
    assert names_in(cert) == {"10.0.0.1", "central.lab"}
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "central.key").stat().st_mode) == 0o600
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, tmp_path / "central.key")  # a real pair
    store = ssl.create_default_context(cafile=str(ca))
    assert [c["subject"] for c in store.get_ca_certs()] == [((("commonName", "EVCharging site CA"),),)]


def test_running_again_keeps_what_is_good_and_reissues_for_new_hosts(tmp_path):
    pki.make_ca(tmp_path)
    first_ca = (tmp_path / "ca.pem").read_bytes()
    cert = pki.issue(tmp_path, "central", ["10.0.0.1"])
    first = cert.read_bytes()
    pki.make_ca(tmp_path)
    pki.issue(tmp_path, "central", ["10.0.0.1"])
    assert (tmp_path / "ca.pem").read_bytes() == first_ca and cert.read_bytes() == first
    pki.issue(tmp_path, "central", ["10.0.0.2", "10.0.0.1"])
    assert (tmp_path / "ca.pem").read_bytes() == first_ca and names_in(cert) == {"10.0.0.1", "10.0.0.2"}


def test_the_command_line_names_a_missing_ca(tmp_path, capsys):
    assert pki.main(["cert", str(tmp_path), "central", "10.0.0.1"]) == 1
    assert "make the CA first" in capsys.readouterr().err
    assert pki.main(["ca", str(tmp_path)]) == 0
    assert pki.main(["cert", str(tmp_path), "central", "10.0.0.1"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "ca.pem"), str(tmp_path / "central.pem")]
