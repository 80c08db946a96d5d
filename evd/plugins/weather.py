"""The weather watcher (R22): a CP whose city is too cold or too hot goes out of service.

Every ``interval`` central reads the temperature of each CP's city from a pluggable source:
``file`` (a YAML mapping of city to °C, for labs and tests) or ``http`` (a weather API whose
JSON answer has ``main.temp`` in °C, e.g. OpenWeatherMap with ``units=metric``). Outside
``[min_celsius, max_celsius]`` the CP is taken out of service with the reason on the panel;
a running supply finishes first. It comes back when the temperature is normal again, unless
an operator stopped it meanwhile. A source that fails keeps the last decision (fail soft).
"""

import asyncio
import json
import logging
import pathlib
import time
import typing
import urllib.parse

import attrs
import yaml

import evd
from evd.central.network import network_of
from evd.config import Duration, positive

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 5.0
WARN_EVERY = 300.0  # seconds between repeated warnings about a failing source


@attrs.frozen
class WeatherConfig:
    enabled: bool = False
    source: typing.Literal["file", "http"] = "file"
    file: pathlib.Path | None = None
    url: str = "https://api.openweathermap.org/data/2.5/weather?q={city}&units=metric&appid={key}"
    api_key: str = ""
    interval: Duration = attrs.field(default=Duration(60), validator=positive)
    min_celsius: float = -5.0
    max_celsius: float = 40.0


class FileSource:
    def __init__(self, config):
        self.path = config.file

    def temperatures(self, cities):
        data = yaml.safe_load(pathlib.Path(self.path).read_text()) or {}
        return {city: float(data[city]) for city in cities if isinstance(data.get(city), (int, float))}


class HttpSource:
    def __init__(self, config):
        self.url, self.key = config.url, config.api_key

    def temperatures(self, cities):
        from urllib.request import urlopen  # http.client and email: only a station that polls needs them

        found = {}
        for city in cities:
            url = self.url.format(city=urllib.parse.quote(city), key=urllib.parse.quote(self.key))
            with urlopen(url, timeout=HTTP_TIMEOUT) as answer:
                found[city] = float(json.load(answer)["main"]["temp"])
        return found


SOURCES = {"file": FileSource, "http": HttpSource}


class Watcher:
    def __init__(self, daemon, config):
        self.daemon = daemon
        self.config = config
        self.source = SOURCES[config.source](config)
        self.last_warning = 0.0

    async def run(self):
        while True:
            await self.check()
            await asyncio.sleep(self.config.interval)

    async def check(self):
        network = network_of(self.daemon)
        cps = network.charging_points()
        cities = {cp.city for cp in cps if cp.city}
        if not cities:
            return
        try:
            temperatures = await asyncio.to_thread(self.source.temperatures, cities)
        except Exception as e:  # no network, a bad file, a changed API: keep the last decisions
            if time.monotonic() - self.last_warning > WARN_EVERY:
                self.last_warning = time.monotonic()
                log.warning("weather source %s failed (%s); keeping the current states", self.config.source, e)
            return
        self.daemon.state.set(("weather",), temperatures)
        low, high = self.config.min_celsius, self.config.max_celsius
        for cp in cps:
            celsius = temperatures.get(cp.city)
            if celsius is None:
                continue
            if low <= celsius <= high:
                network.weather_release(cp.id)
            else:
                network.weather_hold(cp.id, f"{celsius:g} °C in {cp.city}")


@evd.hookimpl
def evd_config_sections():
    return {"weather": WeatherConfig}


@evd.hookimpl
def evd_startup(daemon):
    config = daemon.config.sections.get("weather")
    if daemon.role_name != "central" or config is None or not config.enabled:
        return
    if config.source == "file" and config.file is None:
        log.error("weather.source is file but weather.file is not set; the weather watcher is off")
        return
    daemon.spawn(Watcher(daemon, config).run())
