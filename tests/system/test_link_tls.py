"""TLS on the monitor–central link (DESIGN.md §6): central.tls, monitor.central_ca, central.tls.required."""

import json
import socket
import threading

import pytest

from evd import framing, pki

from helpers import run, wait_for


@pytest.fixture
def site(short_tmp):
    """The site's CA and central's certificate for 127.0.0.1, as provision.sh makes them; and a stranger CA."""
    pki.make_ca(short_tmp / "pki")
    pki.issue(short_tmp / "pki", "central", ["127.0.0.1", "localhost"])
    pki.make_ca(short_tmp / "other", name="Someone else's CA")
    return short_tmp / "pki"


def tls_section(site, required):
    return {"tls": {"cert": str(site / "central.pem"), "key": str(site / "central.key"), "required": required}}


def audit_outcomes(central):
    return [(r["action"], r["outcome"]) for r in central.evctl_json("audit", "--limit", "100")]


def hung_up(sock):
    """The peer closed ``sock`` (a reset too: it closed with our bytes unread) without a word."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


class Recorder:
    """A TCP relay between a monitor and central that keeps every byte it carries, each way."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream, self.downstream = bytearray(), bytearray()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, server, self.upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.downstream), daemon=True).start()

    @staticmethod
    def _pump(source, sink, seen):
        try:
            while data := source.recv(65536):
                seen.extend(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def close(self):
        self.listener.close()


def test_tls_required_keeps_the_credential_and_key_off_the_wire_and_refuses_plain_clients(local_network, site, short_tmp):
    net = local_network
    central = net.central(open_registration=False, **tls_section(site, required=True)).start()
    credential = central.evctl_json("cp", "register", "T1", "--location", "Lab", "--price", "0.4")["credential"]
    (short_tmp / "T1.cred").write_text(credential + "\n")
    recorder = Recorder(net.central_port)
    try:
        engine, monitor = net.cp(
            "T1", price=0.4,
            monitor={"central": f"127.0.0.1:{recorder.port}", "central_ca": str(site / "ca.pem"), "credential_file": str(short_tmp / "T1.cred")},
        )  # fmt: skip
        engine.start()
        monitor.start()
        net.wait_state("T1", "ACTIVE", timeout=30)
        journal = net.root / "state" / "engine-T1.journal"
        wait_for(lambda: journal.exists() and json.loads(journal.read_text()).get("key"), timeout=10, message="the engine to hold its key")
        key = json.loads(journal.read_text())["key"]
        # The whole conversation went through TLS: no frame, no credential, no key in clear.
        upstream, downstream = bytes(recorder.upstream), bytes(recorder.downstream)
        assert upstream[:1] == b"\x16" and downstream[:1] == b"\x16"  # TLS handshake records, both ways
        assert credential.encode() not in upstream and key.encode() not in downstream
        assert b"REG#" not in upstream and b"HB#" not in upstream and b"REGR#" not in downstream
    finally:
        recorder.close()

    # A client in clear is hung up on after its first bytes, and audited.
    with socket.create_connection(("127.0.0.1", net.central_port), timeout=5) as plain:
        plain.sendall(framing.encode_frame(f"REG#T1#Lab#0.4##{credential}".encode()))
        assert hung_up(plain)  # closed, not ACKed
    wait_for(
        lambda: ("monitor connection", "refused: plain connection on a TLS-only link") in audit_outcomes(central),
        message="the plain client in the audit log",
    )
    # Garbage that looks like TLS fails its handshake, and is audited too.
    with socket.create_connection(("127.0.0.1", net.central_port), timeout=5) as garbage:
        garbage.sendall(b"\x16" + bytes(range(256)) * 4)
        assert hung_up(garbage)
    wait_for(
        lambda: any(a == "monitor connection" and o.startswith("refused: TLS handshake failed") for a, o in audit_outcomes(central)),
        message="the failed handshake in the audit log",
    )
    # A monitor that does not trust central's certificate never hands it its credential.
    engine2, stranger = net.cp("T2", monitor={"central_ca": str(short_tmp / "other" / "ca.pem")})
    engine2.start()
    stranger.start()
    wait_for(lambda: "certificate not trusted" in stranger.log(), timeout=15, message="the monitor to refuse central's certificate")
    assert "T2" not in net.cps()
    assert net.state_of("T1") == "ACTIVE"  # central went on serving its CPs


def test_tls_optional_serves_tls_and_plain_monitors_on_one_port(local_network, site):
    net = local_network
    central = net.central(**tls_section(site, required=False)).start()
    for cp_id, monitor in (("S1", {"central_ca": str(site / "ca.pem")}), ("P1", {})):
        engine, mon = net.cp(cp_id, monitor=monitor)
        engine.start()
        mon.start()
    net.wait_all("ACTIVE", ["S1", "P1"], timeout=30)
    assert not [outcome for action, outcome in audit_outcomes(central) if action == "monitor connection"]


def test_tls_misconfiguration_is_a_clear_error_before_anything_runs(local_network, site, short_tmp):
    net = local_network
    central = net.central(tls={"required": True})
    checked = run("evd", "check", "-c", central.path)
    assert checked.returncode == 2 and "required: true needs a cert" in checked.stderr, checked.stderr
    assert "Traceback" not in checked.stderr
    (short_tmp / "not-a-cert.pem").write_text("hello\n")
    central = net.central(tls={"cert": str(short_tmp / "not-a-cert.pem"), "key": str(site / "central.key")})
    started = run("evd", "run", "-c", central.path, timeout=30)
    assert started.returncode != 0 and "central.tls" in started.stderr and "Traceback" not in started.stderr, started.stderr
    _engine, monitor = net.cp("M1", monitor={"central_ca": str(short_tmp / "missing-ca.pem")})
    started = run("evd", "run", "-c", monitor.path, timeout=30)
    assert started.returncode != 0 and "monitor.central_ca" in started.stderr and "missing-ca.pem" in started.stderr, started.stderr
