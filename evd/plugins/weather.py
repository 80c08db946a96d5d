"""The weather station EV_W (R22, R27): the ``weather`` role, talking to central only through its HTTP API.

Every ``sync_interval`` it reads the charging points' cities from ``GET /api/charging_points``;
every ``interval`` it reads each city's temperature from its source — ``http``: OpenWeatherMap's
current-weather API or one answering like it (``main.temp`` in °C), the key from
``api_key_file`` or ``$OPENWEATHER_API_KEY``; ``file``: a YAML mapping of city to °C, for labs and
tests. It posts ``POST /api/weather_alert`` with its token when a city's reading changes or
leaves or re-enters ``[min_celsius, max_celsius]``, and every city again each ``sync_interval``,
so that a restarted central learns the state. Central applies R22: out of service after the
running supply, back when normal unless an operator stopped it.

A source or a central that fails is said on the panel and in the log, and the station runs on:
a city it has no reading for is never held. The limits change on SIGHUP and with
``evctl weather limits MIN MAX`` (the panel's ``l``).
"""

import asyncio
import json
import logging
import os
import pathlib
import time
import typing
import urllib.error
import urllib.parse

import attrs
import yaml

import evd
from evd import messages
from evd.commands import Arg, CommandSpec
from evd.config import Duration, positive
from evd.errors import CommandError, EvdError
from evd.role import Role

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 5.0
OPENWEATHER = "https://api.openweathermap.org/data/2.5/weather?q={city}&units=metric&appid={key}"
KEY_VARIABLE = "OPENWEATHER_API_KEY"
#: What the panel says when a problem is over.
ANSWERS_AGAIN = {
    "source": "the weather source answers again",
    "central": "central answers again",
    "alerts": "central takes the alerts again",
}


@attrs.frozen
class WeatherConfig:
    central: str = "http://127.0.0.1:8080"  # central's API (api.listen): https://HOST:PORT beyond loopback
    token_file: pathlib.Path | None = None  # an API token of central's (evctl api token add weather)
    cacert: pathlib.Path | None = None  # the CA that signed central's API certificate (the site CA)
    source: typing.Literal["http", "file"] = "http"
    file: pathlib.Path | None = None  # source file: a YAML mapping city -> °C
    url: str = OPENWEATHER  # source http: {city} and {key} are filled in
    api_key_file: pathlib.Path | None = None  # source http: else $OPENWEATHER_API_KEY
    interval: Duration = attrs.field(default=Duration(4), validator=positive)
    sync_interval: Duration = attrs.field(default=Duration(60), validator=positive)
    min_celsius: float = 0.0
    max_celsius: float = 40.0

    def __attrs_post_init__(self):
        if self.min_celsius > self.max_celsius:
            raise ValueError(f"min_celsius ({self.min_celsius:g}) is above max_celsius ({self.max_celsius:g})")
        if self.source == "file" and self.file is None:
            raise ValueError("source: file needs file (a YAML mapping of city to °C)")


class SourceError(Exception):
    """The source gave no temperatures this time; the message says why, for the panel."""


class FileSource:
    def __init__(self, config):
        self.path = config.file

    def read(self, cities):
        try:
            data = yaml.safe_load(pathlib.Path(self.path).read_text())
        except OSError as e:
            raise SourceError(f"cannot read {self.path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise SourceError(f"{self.path} is not YAML: {e}") from None
        if not isinstance(data, dict):
            raise SourceError(f"{self.path} must map cities to °C")
        return {city: float(data[city]) for city in cities if isinstance(data.get(city), (int, float)) and not isinstance(data[city], bool)}


class HttpSource:
    """OpenWeatherMap's current weather (``units=metric``), one request per city."""

    def __init__(self, config):
        self.url = config.url
        self.key = _api_key(config)

    def read(self, cities):
        from urllib.request import urlopen  # http.client and email: only a station that polls needs them

        found = {}
        for city in cities:
            url = self.url.format(city=urllib.parse.quote(city), key=urllib.parse.quote(self.key))
            try:
                with urlopen(url, timeout=HTTP_TIMEOUT) as answer:
                    found[city] = float(json.load(answer)["main"]["temp"])
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    continue  # a city the service does not know: no reading for it
                raise SourceError(f"the weather service answered HTTP {e.code} ({_service_message(e)})") from None
            except (urllib.error.URLError, OSError) as e:
                raise SourceError(f"the weather service is unreachable ({getattr(e, 'reason', e) or 'timed out'})") from None
            except (ValueError, KeyError, TypeError):
                raise SourceError(f"the weather service's answer for {city} has no main.temp") from None
        return found


SOURCES = {"file": FileSource, "http": HttpSource}


def _api_key(config):
    if config.api_key_file is not None:
        try:
            key = config.api_key_file.read_text().strip()
        except OSError as e:
            raise EvdError(f"weather.api_key_file: cannot read {config.api_key_file}: {e.strerror}") from None
    else:
        key = os.environ.get(KEY_VARIABLE, "").strip()
    if not key:
        raise EvdError(f"the http weather source needs an API key: set weather.api_key_file or ${KEY_VARIABLE}")
    return key


def _service_message(error):
    try:
        return json.loads(error.read())["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return error.reason


class Weather(Role):
    uses_bus = False

    def __init__(self, daemon):
        super().__init__(daemon)
        self.limits = (self.config.min_celsius, self.config.max_celsius)
        self.source = None
        self.central = None
        self.cities = {}  # city -> its CP ids, from central's last answer
        self.readings = {}  # city -> {"celsius", "at", "alert", "posted"}: what was read and told
        self.problems = {"source": None, "central": None, "alerts": None}  # what went wrong last, in words; None when fine
        self._synced = asyncio.Event()
        self._wake = asyncio.Event()  # poll now (new limits)

    async def start(self):
        from evd.api.client import ApiClient

        self.source = SOURCES[self.config.source](self.config)
        self.central = ApiClient(self.config.central, self.config.token_file, self.config.cacert)
        if self.config.token_file is None:
            self.message("no weather.token_file: central will refuse the alerts (evctl api token add weather)")
        self.daemon.spawn(self._sync_loop())
        self.daemon.spawn(self._poll_loop())
        self._publish_state()

    async def reload(self, config):
        section = config.section("weather")
        if (section.min_celsius, section.max_celsius) != self.limits:
            self.set_limits(section.min_celsius, section.max_celsius, "the configuration")

    def status(self):
        return {"limits": {"min_celsius": self.limits[0], "max_celsius": self.limits[1]}, "cities": self._cities(), **self.problems}

    # -- central: where the CPs are, and the alerts -------------------------------------------

    async def _sync_loop(self):
        while True:
            await self.sync()
            await asyncio.sleep(self.daemon.config.section("weather").sync_interval)

    async def sync(self):
        try:
            cps = await asyncio.to_thread(self.central.request, "GET", "/api/charging_points", None, HTTP_TIMEOUT)
        except EvdError as e:
            self._problem("central", f"cannot read the CPs from central: {e}")
            return
        cities = {}
        for cp in cps:
            if cp.get("city"):
                cities.setdefault(cp["city"], []).append(cp["id"])
        if set(cities) != set(self.cities):
            self.message(f"{len(cities)} cities from central: {', '.join(sorted(cities)) or 'none'}")
        self.cities = {city: sorted(ids) for city, ids in cities.items()}
        self._problem("central", None)
        self._synced.set()
        self._publish_state()

    async def _post(self, city, reading):
        body = {"city": city, "alert": reading["alert"], "celsius": reading["celsius"]}
        try:
            await asyncio.to_thread(self.central.request, "POST", "/api/weather_alert", body, HTTP_TIMEOUT)
        except EvdError as e:
            self._problem("alerts", f"central did not take the alert for {city}: {e}")
            return
        reading["posted"] = (reading["alert"], reading["celsius"], time.monotonic())
        self._problem("alerts", None)

    # -- the source ---------------------------------------------------------------------------

    async def _poll_loop(self):
        await self._synced.wait()
        while True:
            await self.poll()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.daemon.config.section("weather").interval)
            except TimeoutError:
                pass

    async def poll(self):
        cities = sorted(self.cities)
        if not cities:
            return
        try:
            temperatures = await asyncio.to_thread(self.source.read, cities)
        except SourceError as e:
            self._problem("source", str(e))
            temperatures = {}
        else:
            missing = [city for city in cities if city not in temperatures]
            self._problem("source", f"no temperature for {', '.join(missing)}" if missing else None)
        low, high = self.limits
        resend = self.daemon.config.section("weather").sync_interval
        for city in cities:
            reading = self.readings.setdefault(city, {"celsius": None, "at": None, "alert": None, "posted": None})
            if city in temperatures:
                reading.update(celsius=temperatures[city], at=messages.now_iso())
            if reading["celsius"] is None:
                continue  # never read: nothing is held on a guess
            alert = not low <= reading["celsius"] <= high
            if alert != reading["alert"] and reading["alert"] is not None:
                self.message(f"{city}: {reading['celsius']:g} °C, " + ("out of range: alert" if alert else "back in range"))
            reading["alert"] = alert
            posted = reading["posted"]
            if posted is None or posted[:2] != (alert, reading["celsius"]) or time.monotonic() - posted[2] > resend:
                await self._post(city, reading)
        self._publish_state()

    def set_limits(self, low, high, by):
        if low > high:
            raise CommandError("bad_args", f"the minimum ({low:g} °C) is above the maximum ({high:g} °C)")
        self.limits = (low, high)
        self.message(f"limits set by {by}: {low:g} to {high:g} °C")
        self._wake.set()
        self._publish_state()

    # -- panel and commands ---------------------------------------------------------------------

    def cmd_limits(self, args, ctx):
        low, high = args.get("min"), args.get("max")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise CommandError("bad_args", "give the minimum and maximum in °C")
        self.set_limits(float(low), float(high), "the operator")
        return {"min_celsius": self.limits[0], "max_celsius": self.limits[1]}

    def _cities(self):
        rows = {}
        for city, cps in sorted(self.cities.items()):
            reading = self.readings.get(city) or {}
            rows[city] = {"celsius": reading.get("celsius"), "at": reading.get("at"), "alert": reading.get("alert"), "cps": cps}
        return rows

    def _problem(self, where, text):
        if text != self.problems[where]:
            if text:
                self.message(text)
            elif self.problems[where]:
                self.message(ANSWERS_AGAIN[where])
            self.problems[where] = text
            self._publish_state()

    def _publish_state(self):
        low, high = self.limits
        self.daemon.state.set(
            ("weather",),
            {
                "central": self.config.central,
                "source": self.config.source,
                "min_celsius": low,
                "max_celsius": high,
                "cities": self._cities(),
                "problems": dict(self.problems),
            },
        )


COMMANDS = [
    CommandSpec(
        ("weather", "limits"),
        "set the range of temperatures in which CPs stay in service (until SIGHUP rereads the file)",
        role="weather",
        args=(
            Arg("min", "lowest temperature, in degrees Celsius", type=float, metavar="MIN"),
            Arg("max", "highest temperature, in degrees Celsius", type=float, metavar="MAX"),
        ),
        mutating=True,
    ),
]


@evd.hookimpl
def evd_register_roles():
    return {"weather": Weather}


@evd.hookimpl
def evd_config_sections():
    return {"weather": WeatherConfig}


@evd.hookimpl
def evd_register_commands():
    return COMMANDS


@evd.hookimpl
def evd_control_commands(daemon):
    if daemon.role_name != "weather":
        return None
    return {"weather.limits": daemon.role.cmd_limits}
