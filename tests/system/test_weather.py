"""EV_W, the weather station (R22, R27): its own process, talking to central only through the HTTP API."""

import http.server
import json
import os
import signal
import threading
import time
import urllib.parse

import pytest

from helpers import make_env, run, wait_for


def celsius(net):
    return {cp["id"]: cp["celsius"] for cp in net.nodes["central"].evctl_json("cp", "list")}


def weather_status(net):
    return net.nodes["weather"].call("status")


def alerts(net):
    return [r for r in net.nodes["central"].evctl_json("audit", "--limit", "200") if r["action"] == "weather alert"]


@pytest.fixture
def city_net(local_network, short_tmp):
    """Central with A1 in Alicante and M1 in Madrid, a driver, and EV_W's token."""
    net = local_network
    central = net.central()
    net.cp("A1", engine={"auto_plug": True, "kwh_per_tick": 0.2})
    net.cp("M1", engine={"auto_plug": True, "kwh_per_tick": 0.2}, monitor={"city": "Madrid"})
    net.driver("D1")
    net.start_all()
    net.wait_all("ACTIVE", ["A1", "M1"])
    net.wait_stream_ready()
    token_file = short_tmp / "weather.token"
    token_file.write_text(central.evctl_json("api", "token", "add", "weather")["token"] + "\n")
    net.token_file = token_file
    return net


def test_ev_w_holds_a_hot_city_after_its_supply_and_lets_it_go_when_normal(city_net, short_tmp):
    net = city_net
    temperatures = short_tmp / "temperatures.yaml"
    temperatures.write_text("Alicante: 21\nMadrid: 25\n")
    weather = net.weather(source="file", file=str(temperatures), token_file=str(net.token_file)).start()
    wait_for(lambda: celsius(net) == {"A1": 21, "M1": 25}, message=f"each CP's temperature at central ({celsius(net)})")
    cities = weather_status(net)["cities"]
    assert cities["Madrid"] == {**cities["Madrid"], "celsius": 25, "alert": False, "cps": ["M1"]}
    # A heat wave in Madrid while M1 supplies: the supply finishes, then M1 is held.
    assert net.nodes["driver-D1"].evctl("driver", "request", "M1", "--kwh", "100").returncode == 0
    net.wait_state("M1", "SUPPLYING")
    temperatures.write_text("Alicante: 21\nMadrid: 46\n")
    wait_for(lambda: weather_status(net)["cities"]["Madrid"]["alert"], message="EV_W to see the heat")
    wait_for(lambda: celsius(net)["M1"] == 46, message="central to hear of it")
    assert net.state_of("M1") == "SUPPLYING"  # never cut short by the weather
    assert net.nodes["driver-D1"].evctl("driver", "cancel").returncode == 0
    net.wait_state("M1", "STOPPED")
    assert net.cps()["M1"]["reason"] == "weather: 46 °C in Madrid"
    assert net.state_of("A1") == "ACTIVE"
    # New limits on SIGHUP: 46 °C is now in range, and M1 comes back.
    weather.path.write_text(weather.path.read_text().replace("sync_interval: 1s", "sync_interval: 1s\n  max_celsius: 50"))
    weather.process.signal(signal.SIGHUP)
    net.wait_state("M1", "ACTIVE")
    assert weather_status(net)["limits"] == {"min_celsius": 0.0, "max_celsius": 50.0}
    # And from the station's commands (its panel's l): below 10 °C is too cold for Alicante's 21? No: 22 and up is too hot.
    assert weather.evctl_json("weather", "limits", "0", "22") == {"min_celsius": 0.0, "max_celsius": 22.0}
    net.wait_all("STOPPED", ["M1"])
    assert net.state_of("A1") == "ACTIVE"
    assert weather.evctl("weather", "limits", "30", "10").returncode == 2  # min above max: refused, kept
    # An operator's stop stands when the weather is normal again.
    net.nodes["central"].evctl("cp", "stop", "A1")
    temperatures.write_text("Alicante: 45\nMadrid: 15\n")
    net.wait_state("M1", "ACTIVE")
    wait_for(lambda: weather_status(net)["cities"]["Alicante"]["alert"], message="Alicante too hot")
    temperatures.write_text("Alicante: 15\nMadrid: 15\n")
    wait_for(lambda: not weather_status(net)["cities"]["Alicante"]["alert"], message="Alicante normal again")
    wait_for(lambda: celsius(net)["A1"] == 15, message="central to hear of it")
    assert net.cps()["A1"]["reason"] == "stopped by the operator"
    # The audit log has one record per change of a city's alert, not one per reading.
    changes = [(r["parameters"]["city"], r["outcome"]) for r in reversed(alerts(net))]
    assert changes == [("Madrid", "on"), ("Madrid", "off"), ("Madrid", "on"), ("Alicante", "on"), ("Madrid", "off"), ("Alicante", "off")]


class OpenWeather(http.server.BaseHTTPRequestHandler):
    """OpenWeatherMap's current-weather API as far as EV_W uses it; the test sets its mood."""

    key, temperatures, slow = "right-key", {}, False

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if self.slow:
            time.sleep(7)
        if query.get("appid") != [self.key]:
            self._answer(401, {"cod": 401, "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."})
        elif query.get("units") != ["metric"]:
            self._answer(400, {"cod": 400, "message": "units"})
        elif query["q"][0] not in self.temperatures:
            self._answer(404, {"cod": "404", "message": "city not found"})
        else:
            self._answer(200, {"name": query["q"][0], "main": {"temp": self.temperatures[query["q"][0]], "humidity": 40}})

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except BrokenPipeError:
            pass  # EV_W gave up waiting (the slow mood)

    def log_message(self, *args):
        pass


@pytest.fixture
def open_weather():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OpenWeather)
    server.daemon_threads = True
    OpenWeather.key, OpenWeather.temperatures, OpenWeather.slow = "right-key", {"Alicante": 18.5, "Madrid": 30.25}, False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/data/2.5/weather?q={{city}}&units=metric&appid={{key}}"
    server.shutdown()


def test_ev_w_reads_openweathermap_and_runs_on_through_its_errors(city_net, open_weather):
    net = city_net
    weather = net.weather(source="http", url=open_weather, token_file=str(net.token_file))
    weather.env = {**os.environ, "OPENWEATHER_API_KEY": "right-key"}
    weather.start()
    wait_for(lambda: celsius(net) == {"A1": 18.5, "M1": 30.25}, message=f"temperatures from the HTTP source ({celsius(net)})")
    # The key is refused: EV_W says so, runs on, and holds nothing new.
    OpenWeather.key = "another-key"
    wait_for(lambda: "HTTP 401 (Invalid API key" in (weather_status(net)["source"] or ""), message="the refused key on the panel")
    OpenWeather.key, OpenWeather.temperatures = "right-key", {"Alicante": 18.5}
    wait_for(lambda: weather_status(net)["source"] == "no temperature for Madrid", message="an unknown city said")
    OpenWeather.slow = True  # answers after EV_W's 5 s timeout
    wait_for(lambda: "timed out" in (weather_status(net)["source"] or ""), timeout=20, message="the timeout on the panel")
    assert weather.process.alive()
    assert {cp["id"]: cp["state"] for cp in net.nodes["central"].evctl_json("cp", "list")} == {"A1": "ACTIVE", "M1": "ACTIVE"}
    assert alerts(net) == []


def test_ev_w_refused_by_central_says_so_and_runs_on(city_net, short_tmp):
    net = city_net
    temperatures = short_tmp / "temperatures.yaml"
    temperatures.write_text("Alicante: 50\n")
    (short_tmp / "wrong.token").write_text("evd_not-a-token\n")
    weather = net.weather(source="file", file=str(temperatures), token_file=str(short_tmp / "wrong.token")).start()
    wait_for(lambda: "unknown or revoked token" in (weather_status(net)["central"] or ""), message="the refused token said")
    assert net.state_of("A1") == "ACTIVE"  # nothing held on a refused alert
    assert weather.process.alive()


def test_ev_w_command_line(city_net, short_tmp):
    net = city_net
    url = f"http://127.0.0.1:{net.api_port}"
    env = make_env(RUNTIME_DIRECTORY=short_tmp, STATE_DIRECTORY=short_tmp)
    bad_url = run("EV_W", "central:8080", net.token_file, env=env)
    assert bad_url.returncode == 2 and "central: expected http(s)://HOST:PORT" in bad_url.stderr
    no_key = run("EV_W", url, net.token_file, env={k: v for k, v in env.items() if k != "OPENWEATHER_API_KEY"})
    assert no_key.returncode == 1 and "needs an API key" in no_key.stderr and "Traceback" not in no_key.stderr
    missing = run("EV_W", url, short_tmp / "nope.token", short_tmp / "t.yaml", env=env)
    assert missing.returncode == 1 and "nope.token" in missing.stderr and "Traceback" not in missing.stderr
