"""Central's HTTP API (DESIGN.md §9) against a real central over real HTTP: every route, its
tokens and every error of the contract, while central goes on serving its CPs."""

import concurrent.futures
import json
import socket
import time
import urllib.error
import urllib.request

import pytest
import yaml

from brokers import free_port
from helpers import wait_for


def call(net, method, path, body=None, token=None, raw=None, headers=()):
    """(status, JSON answer) of one API call."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://127.0.0.1:{net.api_port}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in headers:
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture
def api_net(local_network):
    net = local_network
    net.central()
    net.cp("A1", engine={"auto_plug": True})
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    wait_for(lambda: call(net, "GET", "/api/status")[0] == 200, timeout=20, message="the API")
    return net


def token(net, name="ops"):
    return net.nodes["central"].evctl_json("api", "token", "add", name)["token"]


def test_reading_routes_answer_as_evctl_does(api_net):
    net = api_net
    central = net.nodes["central"]
    status, cps = call(net, "GET", "/api/charging_points")
    assert status == 200 and cps == central.evctl_json("cp", "list")
    assert call(net, "GET", "/api/charging_points/A1") == (200, cps[0])
    status, body = call(net, "GET", "/api/status")
    assert status == 200 and body["role"] == "central" and body["name"] == "central"
    assert call(net, "GET", "/api/supplies") == (200, central.evctl_json("sessions", "--active"))
    assert call(net, "GET", "/api/sessions?limit=5") == (200, central.evctl_json("sessions")[:5])


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/charging_points/NOPE", 404, "not_found"),
        ("GET", "/api/nothing/here", 404, "not_found"),
        ("GET", "/api/sessions?limit=-3", 400, "bad_request"),
        ("GET", "/api/sessions?limit=many", 400, "bad_request"),
        ("POST", "/api/charging_points/A1/stop", 401, "no_token"),
        ("GET", "/api/audit", 401, "no_token"),
    ],
)
def test_errors_are_json_with_the_contract_s_status(api_net, method, path, status, code):
    answer = call(api_net, method, path)
    assert answer[0] == status and answer[1]["error"]["code"] == code and answer[1]["error"]["message"]


def test_a_token_steers_the_network_is_audited_and_stops_working_once_revoked(api_net):
    net = api_net
    central = net.nodes["central"]
    assert call(net, "POST", "/api/charging_points/A1/stop", token="evd_made_up")[0] == 403
    ops = token(net)
    assert call(net, "POST", "/api/charging_points/A1/stop", token=ops) == (200, {"stopped": ["A1"]})
    net.wait_state("A1", "STOPPED")
    assert call(net, "POST", "/api/charging_points/resume", token=ops) == (200, {"resumed": ["A1"]})
    net.wait_state("A1", "ACTIVE")
    status, audit = call(net, "GET", "/api/audit?limit=50", token=ops)
    assert status == 200
    assert any(r["action"] == "command cp.stop" and r["source"] == "api token ops from 127.0.0.1" for r in audit)
    assert [t["name"] for t in central.evctl_json("api", "token", "list")] == ["ops"]
    assert "token" not in json.dumps(central.evctl_json("api", "token", "list")).replace('"name"', "")
    central.evctl_json("api", "token", "revoke", "ops")
    assert call(net, "POST", "/api/charging_points/A1/stop", token=ops)[0] == 403
    assert net.cps()["A1"]["state"] == "ACTIVE"


def test_registering_and_unregistering_a_cp_and_bad_bodies(api_net):
    net = api_net
    ops = token(net)
    new = {"id": "B7", "location": "Lab", "price_eur_kwh": 0.31, "city": "Alicante"}
    status, body = call(net, "POST", "/api/charging_points", new, token=ops)
    assert status == 201 and set(body) == {"id", "credential"} and body["id"] == "B7" and len(body["credential"]) > 20
    listed = call(net, "GET", "/api/charging_points/B7")[1]
    assert (listed["location"], listed["price_eur_kwh"], listed["state"]) == ("Lab", 0.31, "DISCONNECTED")
    assert call(net, "POST", "/api/charging_points", raw=b"{not json", token=ops)[0] == 400
    assert call(net, "POST", "/api/charging_points", ["B8"], token=ops)[0] == 422
    assert call(net, "POST", "/api/charging_points", {**new, "price_eur_kwh": "cheap"}, token=ops)[0] == 422
    assert call(net, "POST", "/api/charging_points", {**new, "id": "bad id!"}, token=ops)[0] == 422
    assert call(net, "POST", "/api/charging_points", raw=b" " * (65 * 1024), token=ops)[0] == 413
    assert call(net, "DELETE", "/api/charging_points/B7", token=ops)[0] == 200
    assert call(net, "GET", "/api/charging_points/B7")[0] == 404
    assert call(net, "DELETE", "/api/charging_points/B7", token=ops)[0] == 404


def test_a_stop_over_the_api_during_a_supply_gives_the_driver_its_ticket(api_net):
    net = api_net
    ops = token(net)
    driver = net.driver("D1")
    driver.start()
    wait_for(lambda: driver.call("status")["central_reachable"], timeout=20, message="the driver to see central")
    driver.evctl_json("driver", "request", "A1", "--kwh", "30")
    net.wait_state("A1", "SUPPLYING")
    assert call(net, "GET", "/api/supplies")[1][0]["driver"] == "D1"
    assert call(net, "POST", "/api/charging_points/stop", token=ops) == (200, {"stopped": ["A1"]})
    wait_for(lambda: [s for s in net.sessions() if s["status"] == "INTERRUPTED"], timeout=20, message="the interrupted session")
    assert call(net, "GET", "/api/supplies") == (200, [])


def test_the_event_stream_sends_a_snapshot_then_updates(api_net):
    net = api_net
    ops = token(net)
    with urllib.request.urlopen(f"http://127.0.0.1:{net.api_port}/api/events", timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = read_event(stream)
        assert first[0] == "snapshot" and first[1]["cps"]["A1"]["state"] == "ACTIVE"
        call(net, "POST", "/api/charging_points/A1/stop", token=ops)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kind, data = read_event(stream)
            if kind == "update" and any(op[1] == ["cps", "A1"] and op[2]["state"] == "STOPPED" for op in data["ops"] if op[0] == "set"):
                break
        else:
            pytest.fail("no update with A1 STOPPED")


def read_event(stream):
    kind = data = None
    while True:
        line = stream.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and kind is not None:
            return kind, data


def test_a_weather_alert_takes_a_city_s_cps_out_and_back(api_net):
    net = api_net
    ops = token(net)
    alert = {"city": "Alicante", "alert": True, "celsius": -6}
    assert call(net, "POST", "/api/weather_alert", alert)[0] == 401
    status, body = call(net, "POST", "/api/weather_alert", alert, token=ops)
    assert status == 200 and body["cps"] == ["A1"]
    net.wait_state("A1", "STOPPED")
    assert net.cps()["A1"]["reason"] == "weather: -6 °C in Alicante"
    assert call(net, "POST", "/api/weather_alert", {"city": "Alicante", "alert": "yes"}, token=ops)[0] == 422
    assert call(net, "POST", "/api/weather_alert", {"city": "Alicante", "alert": False}, token=ops)[0] == 200
    net.wait_state("A1", "ACTIVE")


def test_the_openapi_document_describes_exactly_the_routes_served(api_net):
    net = api_net
    status, document = call(net, "GET", "/api/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    described = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    from evd.api.routes import ROUTES

    assert described == {(r.method, r.path) for r in ROUTES}
    for method, path in described - {("GET", "/api/events"), ("GET", "/")}:  # served: any answer but "no such route"
        answer = call(net, method, path.replace("{id}", "A1"), token=None)
        assert not (answer[0] == 404 and "no route" in answer[1]["error"]["message"]), (method, path)
    with urllib.request.urlopen(f"http://127.0.0.1:{net.api_port}/", timeout=10) as page:  # the web panel (its own test: a browser)
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html") and b"/api/events" in page.read()


def test_many_clients_and_idle_sockets_do_not_stop_central(api_net):
    net = api_net
    idle = [socket.create_connection(("127.0.0.1", net.api_port)) for _ in range(20)]  # connect, say nothing
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: call(net, "GET", "/api/charging_points")[0], range(200)))
        assert answers == [200] * 200
        assert net.nodes["central"].evctl_json("cp", "list")[0]["state"] == "ACTIVE"
        # A client that says nothing, or half a request, is hung up on (after its idle timeout).
        idle[1].sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
        for quiet in idle[:2]:
            quiet.settimeout(30)
            assert quiet.recv(100) == b"", "central kept an idle client's connection open"
    finally:
        for s in idle:
            s.close()


def test_evctl_url_runs_central_s_commands_remotely_with_the_socket_s_output_and_exit_codes(api_net, tmp_path):
    from helpers import run

    net = api_net
    central = net.nodes["central"]
    url = f"http://127.0.0.1:{net.api_port}"
    token_file = tmp_path / "ops.token"
    token_file.write_text(token(net) + "\n")

    def remote(*args, token=True):
        return run("evctl", "--url", url, *(("--token-file", token_file) if token else ()), *args)

    listed = remote("--json", "cp", "list")
    assert listed.returncode == 0 and json.loads(listed.stdout) == central.evctl_json("cp", "list")
    assert remote("cp", "list").stdout == central.evctl("cp", "list").stdout  # the same table
    assert remote("cp", "stop", "A1").returncode == 0
    net.wait_state("A1", "STOPPED")
    assert json.loads(remote("--json", "cp", "resume", "--all").stdout) == {"resumed": ["A1"]}
    net.wait_state("A1", "ACTIVE")
    assert remote("cp", "stop", "A1", token=False).returncode == 4  # no token: refused
    unknown = remote("cp", "stop", "NOPE")
    assert unknown.returncode == 4 and "NOPE" in unknown.stderr
    registered = remote("--json", "cp", "register", "R2", "--location", "Yard", "--price", "0.4")
    assert registered.returncode == 0 and json.loads(registered.stdout)["id"] == "R2"
    assert remote("--json", "sessions").returncode == 0
    assert remote("api", "token", "list").returncode == 4  # tokens: over the control socket only
    assert remote("attach").returncode == 2
    gone = run("evctl", "--url", f"http://127.0.0.1:{free_port()}", "cp", "list")
    assert gone.returncode == 3 and "cannot reach central's API" in gone.stderr


def self_signed(folder):
    """A certificate for 127.0.0.1 and its key (PEM files), made with the cryptography package."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "api.crt", folder / "api.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key_file


def test_https_with_api_tls_and_evctl_verifying_it(local_network, tmp_path):
    import ssl

    from helpers import run

    net = local_network
    cert, key = self_signed(tmp_path)
    central = net.central()
    config = yaml.safe_load(central.path.read_text())
    config["api"]["tls"] = {"cert": str(cert), "key": str(key)}
    central.path.write_text(yaml.safe_dump(config, sort_keys=False))
    central.start()
    url = f"https://127.0.0.1:{net.api_port}"
    context = ssl.create_default_context(cafile=str(cert))
    wait_for(lambda: urllib.request.urlopen(f"{url}/api/status", context=context, timeout=5).status == 200, timeout=20, message="HTTPS")
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP on the HTTPS port: hung up on
        urllib.request.urlopen(f"http://127.0.0.1:{net.api_port}/api/status", timeout=5).read()
    verified = run("evctl", "--url", url, "--cacert", cert, "--json", "cp", "list")
    assert verified.returncode == 0 and json.loads(verified.stdout) == []
    unverified = run("evctl", "--url", url, "cp", "list")  # the system's CAs do not know this one
    assert unverified.returncode == 3 and "certificate verify failed" in unverified.stderr
