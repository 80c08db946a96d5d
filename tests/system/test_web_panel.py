"""The web panel at / in a real browser (Debian's chromium, driven by selenium): it shows a CP
going SUPPLYING with rising kWh, a Stop click makes its tile Out of Order, and evctl agrees."""

import os
import shutil

import pytest
from test_api import api_net, token  # noqa: F401 (a fixture)

from helpers import wait_for

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("EVD_REQUIRE_BROWSER"):  # .ci/run installs them: missing there is a failure
            pytest.fail("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        pytest.skip("no chromium/chromedriver on this machine (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def tile_text(browser, cp_id):
    """(text, class) of a CP's tile, read in one go in the page."""
    script = "const t = document.querySelector(`.tile[data-cp='${arguments[0]}']`); return t ? [t.innerText, t.className] : ['', ''];"
    return tuple(browser.execute_script(script, cp_id))


def live_kwh(browser, cp_id):
    text = tile_text(browser, cp_id)[0]
    for line in text.splitlines():
        if " kWh · " in line:  # the live line: "3.0 kWh · 1.62 € · driver D1"
            return float(line.split(" kWh")[0])
    return None


def test_the_web_panel_shows_a_supply_live_and_stops_a_cp(api_net, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    net = api_net
    ops = token(net)
    browser.get(f"http://127.0.0.1:{net.api_port}/")
    wait_for(lambda: "Active" in tile_text(browser, "A1")[0], timeout=20, message="tile A1 Active")
    assert "ACTIVE" in tile_text(browser, "A1")[1]
    assert "0.50 €/kWh" in tile_text(browser, "A1")[0]

    driver = net.driver("D1")
    driver.start()
    wait_for(lambda: driver.call("status")["central_reachable"], timeout=20, message="the driver to see central")
    driver.evctl_json("driver", "request", "A1", "--kwh", "30")
    wait_for(lambda: "Supplying" in tile_text(browser, "A1")[0], timeout=20, message="tile A1 Supplying")
    assert "driver D1" in tile_text(browser, "A1")[0]
    first = wait_for(lambda: live_kwh(browser, "A1"), timeout=20, message="live kWh on the tile")
    wait_for(lambda: (live_kwh(browser, "A1") or 0) > first, timeout=20, message="the kWh to rise without a reload")
    browser.save_screenshot(str(tmp_path / "supplying.png"))

    browser.find_element(By.ID, "token").send_keys(ops)
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, '.tile[data-cp="A1"] button').is_enabled(), timeout=10, message="the button")
    browser.find_element(By.CSS_SELECTOR, '.tile[data-cp="A1"] button').click()
    wait_for(lambda: "Out of Order" in tile_text(browser, "A1")[0], timeout=20, message="tile A1 Out of Order")
    assert "STOPPED" in tile_text(browser, "A1")[1]
    assert net.nodes["central"].evctl_json("cp", "list")[0]["state"] == "STOPPED"
    wait_for(lambda: any("interrupted" in m.text.lower() for m in browser.find_elements(By.CSS_SELECTOR, "#messages li")),
             timeout=20, message="the supply's end among the messages")  # fmt: skip
    browser.save_screenshot(str(tmp_path / "stopped.png"))
