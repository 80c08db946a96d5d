"""A real ``evd run`` process (the test plugin's probe role) driven through evctl and its socket."""

import json
import os
import signal
import socket
import stat

import pytest

from evd.client import ControlClient
from evd.state import apply_ops

from helpers import EvdProcess, evctl, evctl_json, run, wait_for


def test_commands_are_installed():
    assert run("evd", "--version").stdout.strip().startswith("evd ")
    assert "cp stop (ID…|--all)" in run("evctl", "--help").stdout
    for command in ("EV_Central", "EV_CP_E", "EV_CP_M", "EV_Driver"):
        result = run(command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout, command


def test_status_and_ping(probe_daemon, plugin_env):
    _daemon, sock = probe_daemon
    status = evctl_json(sock, "status", env=plugin_env)
    assert status["name"] == "probe" and status["role"] == "probe"
    assert status["transport"] == {"kind": None, "connected": None}
    assert status["uptime_s"] >= 0 and status["version"]
    assert evctl(sock, "ping", env=plugin_env).stdout.strip() == "pong"
    human = evctl(sock, "status", env=plugin_env).stdout
    assert "role: probe" in human and "greeting: hello" in human


def test_socket_is_private_to_owner_and_group(probe_daemon):
    _daemon, sock = probe_daemon
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660


def test_plugin_command_through_evctl(probe_daemon, plugin_env):
    _daemon, sock = probe_daemon
    assert evctl_json(sock, "probe", "echo", "--text", "world", env=plugin_env) == {"echo": "hello world"}
    assert evctl_json(sock, "probe", "poke", env=plugin_env) == {"pokes": 1}
    refused = evctl(sock, "probe", "echo", env=plugin_env)
    assert refused.returncode == 2 and "probe echo needs --text" in refused.stderr


def test_command_of_another_role_exits_4(probe_daemon, plugin_env):
    _daemon, sock = probe_daemon
    result = evctl(sock, "cp", "stop", "--all", env=plugin_env)
    assert result.returncode == 4
    assert result.stderr.strip() == "evctl: 'cp stop' is a central command; this daemon is a probe"


def test_wrong_socket_exits_3(short_tmp, plugin_env):
    result = evctl(short_tmp / "nobody.sock", "status", env=plugin_env)
    assert result.returncode == 3
    assert result.stderr.strip() == f"evctl: cannot reach the daemon at {short_tmp / 'nobody.sock'}: No such file or directory"


def test_discovery_by_name_and_alone(probe_daemon, plugin_env, short_tmp):
    assert json.loads(run("evctl", "-n", "probe", "--json", "status", env=plugin_env).stdout)["name"] == "probe"
    # The only socket in the directory is found without -n or -s.
    assert run("evctl", "status", "--json", env=plugin_env).returncode == 0
    missing = run("evctl", "-n", "ghost", "status", env=plugin_env)
    assert missing.returncode == 3 and str(short_tmp / "ghost.sock") in missing.stderr


def test_sigterm_stops_cleanly_and_removes_the_socket(probe_daemon, short_tmp):
    daemon, sock = probe_daemon
    assert daemon.stop() == 0
    assert not sock.exists()
    assert (short_tmp / "marker").read_text() == "stopped cleanly\n"


def test_second_daemon_refuses_a_live_socket(probe_daemon, short_tmp, plugin_env):
    _daemon, sock = probe_daemon
    second = EvdProcess(short_tmp / "probe.yaml", short_tmp / "second.log", env=plugin_env).start()
    assert second.proc.wait(20) == 1
    assert f"evd: control socket {sock} is in use by a running daemon" in second.log()
    assert evctl(sock, "ping", env=plugin_env).returncode == 0  # the first one is untouched


def test_stale_socket_is_replaced(short_tmp, plugin_env):
    sock = short_tmp / "probe.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()  # bound but nobody listens: what a SIGKILLed daemon leaves behind
    (short_tmp / "p.yaml").write_text(f"role: probe\ncontrol: {{socket: {sock}}}\n")
    daemon = EvdProcess(short_tmp / "p.yaml", short_tmp / "p.log", env=plugin_env).start()
    try:
        daemon.wait_ready(sock)
    finally:
        assert daemon.stop() == 0


def test_garbage_and_oversized_lines_leave_the_daemon_up(probe_daemon, plugin_env):
    _daemon, sock = probe_daemon
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(sock))
        reader = raw.makefile("rb")
        assert json.loads(reader.readline())["role"] == "probe"  # the server speaks first
        raw.sendall(b"\x00\xff garbage {{{\n")
        assert json.loads(reader.readline())["error"]["code"] == "bad_request"
        raw.sendall(b'{"id": 5, "cmd": "ping"}\n')
        assert json.loads(reader.readline()) == {"id": 5, "ok": True, "result": "pong"}
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(sock))
        reader = raw.makefile("rb")
        reader.readline()
        try:
            raw.sendall(b"x" * (1024 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = reader.readline()
        assert reply == b"" or json.loads(reply)["error"]["code"] == "bad_request"
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(sock))
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(b"not json\n" * 20)
        replies = reader.readlines()  # the server hangs up after repeated garbage
        assert 1 <= len(replies) <= 10
    assert evctl(sock, "ping", env=plugin_env).returncode == 0


def test_watch_streams_a_snapshot_then_coalesced_updates(probe_daemon, plugin_env):
    _daemon, sock = probe_daemon
    with ControlClient(sock) as watcher:
        watcher.send("watch")
        snapshot = watcher.read_event(timeout=5)
        assert snapshot["event"] == "snapshot" and snapshot["state"]["probe"] == {"pokes": 0}
        tree = snapshot["state"]
        for _ in range(5):
            evctl(sock, "probe", "poke", env=plugin_env)

        def caught_up():
            event = watcher.read_event(timeout=0.5)
            if event and event.get("event") == "update":
                apply_ops(tree, event["ops"])
            return tree["probe"]["pokes"] == 5

        wait_for(caught_up, timeout=10)
        assert tree["messages"] == [f"poke {i}" for i in range(1, 6)]


def test_an_idle_watch_survives_its_read_timeouts(probe_daemon, plugin_env):
    # A panel's watch times out every second while the daemon is idle; it must keep reading.
    _daemon, sock = probe_daemon
    with ControlClient(sock) as watcher:
        watcher.send("watch")
        tree = watcher.read_event(timeout=5)["state"]
        for _ in range(3):
            assert watcher.read_event(timeout=0.1) is None
        evctl(sock, "probe", "poke", env=plugin_env)

        def poked():
            event = watcher.read_event(timeout=0.5)
            if event and event.get("event") == "update":
                apply_ops(tree, event["ops"])
            return tree["probe"]["pokes"] == 1

        wait_for(poked, timeout=10, message="the update after idle timeouts")


def test_sighup_reloads_what_can_be_reloaded(probe_daemon, plugin_env, short_tmp):
    daemon, sock = probe_daemon
    config = short_tmp / "probe.yaml"
    config.write_text(config.read_text().replace("probe: {", "probe: {greeting: bonjour, "))
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: evctl_json(sock, "status", env=plugin_env)["greeting"] == "bonjour", timeout=10)
    # A broken file on reload is reported and the running configuration kept.
    config.write_text("role: probe\nprobe: {greting: x}\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed, keeping the running configuration" in daemon.log(), timeout=10)
    assert daemon.alive() and evctl_json(sock, "status", env=plugin_env)["greeting"] == "bonjour"


def test_sd_notify_ready_watchdog_and_stopping(short_tmp, plugin_env):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(short_tmp / "notify"))
    notify.settimeout(10)
    env = dict(plugin_env, NOTIFY_SOCKET=str(short_tmp / "notify"), WATCHDOG_USEC="400000")
    sock = short_tmp / "p.sock"
    (short_tmp / "p.yaml").write_text(f"role: probe\ncontrol: {{socket: {sock}}}\n")
    daemon = EvdProcess(short_tmp / "p.yaml", short_tmp / "p.log", env=env).start()
    messages = []

    def heard(text):
        while not any(text in m for m in messages):
            messages.append(notify.recv(4096).decode())
        return True

    try:
        assert heard("READY=1")
        assert heard("WATCHDOG=1")
    finally:
        daemon.stop()
    assert heard("STOPPING=1")
    notify.close()


def test_journald_lines_have_priorities_and_no_time_stamps(short_tmp, plugin_env):
    sock = short_tmp / "p.sock"
    (short_tmp / "p.yaml").write_text(f"role: probe\ncontrol: {{socket: {sock}}}\n")
    daemon = EvdProcess(short_tmp / "p.yaml", short_tmp / "p.log", env=dict(plugin_env, JOURNAL_STREAM="8:1234")).start()
    daemon.wait_ready(sock, timeout=20)
    daemon.stop()
    lines = daemon.log().splitlines()
    assert lines and all(line.startswith("<") for line in lines)
    assert any(line.startswith("<6>evd.daemon: probe probe ready") for line in lines)


def test_config_errors_exit_2_before_anything_starts(short_tmp, plugin_env):
    bad = short_tmp / "bad.yaml"
    bad.write_text("role: probe\nprobe:\n  greting: hi\n")
    result = run("evd", "run", "-c", bad, env=plugin_env)
    assert result.returncode == 2
    assert result.stderr.strip() == f"evd: {bad}:3: unknown key 'probe.greting' (did you mean 'probe.greeting'?)"
    check = run("evd", "check", "-c", bad, env=plugin_env)
    assert check.returncode == 2 and check.stderr == result.stderr


def test_check_accepts_a_good_file(short_tmp, plugin_env):
    good = short_tmp / "good.yaml"
    good.write_text("role: probe\nname: p1\n")
    result = run("evd", "check", "-c", good, "--set", "probe.greeting=hey", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_disabled_plugin_is_not_loaded(short_tmp, plugin_env):
    good = short_tmp / "good.yaml"
    good.write_text("role: probe\n")
    result = run("evd", "check", "-c", good, env=dict(plugin_env, EVD_DISABLE_PLUGINS="probe"))
    assert result.returncode == 2 and "unknown role 'probe'" in result.stderr
    plugins = run("evd", "plugins", env=dict(plugin_env, EVD_DISABLE_PLUGINS="probe")).stdout
    assert "probe: disabled (EVD_DISABLE_PLUGINS)" in plugins and "probe" not in plugins.split("roles:")[1]


def test_broken_plugin_is_reported_not_fatal(short_tmp, plugin_dir, plugin_env, tmp_path):
    broken = tmp_path / "broken"
    (broken / "evd_broken-0.1.dist-info").mkdir(parents=True)
    (broken / "evd_broken-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: evd-broken\nVersion: 0.1\n")
    (broken / "evd_broken-0.1.dist-info" / "entry_points.txt").write_text("[evd]\nbroken = evd_broken_missing\n")
    env = dict(plugin_env, PYTHONPATH=f"{plugin_dir}:{broken}")
    result = run("evd", "plugins", env=env)
    assert result.returncode == 0
    assert "broken: FAILED TO LOAD: ModuleNotFoundError" in result.stdout
    assert "probe:" in result.stdout


def _call_as(uid, sock, command):
    """Send one command from a forked child running as ``uid``: no program needs to be readable by it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX) as raw:
                raw.connect(str(sock))
                reader = raw.makefile("rb")
                reader.readline()
                raw.sendall(json.dumps({"id": 1, "cmd": command}).encode() + b"\n")
                os.write(write_end, reader.readline())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reply = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(reply)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_other_users_may_read_but_not_change_state(probe_daemon):
    _daemon, sock = probe_daemon
    # Let "nobody" connect at all, so that the credential check is what stops it.
    os.chmod(sock.parent, 0o711)
    os.chmod(sock, 0o666)
    nobody = 65534
    assert _call_as(nobody, sock, "status")["ok"] is True
    refused = _call_as(nobody, sock, "probe.poke")
    assert refused["error"]["code"] == "not_permitted"
    assert "only root or members of the socket's group" in refused["error"]["message"]
