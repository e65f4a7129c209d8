"""The dashboard in headless Chromium: pages load cleanly, charts draw, numbers match the API.

The app runs in a uvicorn server thread on a manual clock, so nothing moves
between the page's read and the API's: their numbers must be equal, not
close. One browser session for the module. Needs Debian's ``chromium`` and
``chromium-driver`` (``.ci/run`` installs them); skipped without them.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from dashboard_campaign import DashboardCampaign, start_campaign

from headliner.service.app import create_app
from headliner.service.auth import create_key
from headliner.service.clock import ManualClock
from headliner.service.settings import Settings
from headliner.storage.base import KeyScope
from headliner.storage.migrate import upgrade
from headliner.storage.sql import SqlStore

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
DRIVER = ("/usr/bin/chromedriver", "chromedriver")
WAIT_SECONDS = 30.0


def _find(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


@dataclass
class Served:
    """The app behind a real HTTP server, and what the tests drive it with."""

    url: str
    store: SqlStore
    clock: ManualClock
    campaign: DashboardCampaign

    @property
    def experiment_url(self) -> str:
        return f"{self.url}/experiments/{self.campaign.experiment_id}"

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.load(response)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium session for the module (skipped when none is installed)."""
    binary, driver = _find(CHROMIUM), _find(DRIVER)
    if binary is None or driver is None:
        pytest.skip(
            "headless Chromium not found: `apt-get install chromium chromium-driver` "
            "to run the dashboard's browser tests"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_window_size(1280, 900)
    try:
        yield session
    finally:
        session.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Six hours of the spring-sale campaign, served by uvicorn in a thread."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'headliner.db'}"
    upgrade(url)
    store = SqlStore(url)
    clock = ManualClock(start=1_764_000_000.0)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        posterior_refresh_seconds=0.0,
        refresh_in_background=False,
        snapshot_interval_seconds=600.0,
        report_cache_seconds=0.0,
        api_key_cache_seconds=0.0,
        seed=5,
        log_level="WARNING",
    )
    app = create_app(settings, store=store, clock=clock)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="dashboard-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        service = app.state.context.service
        campaign = start_campaign(service, clock, hours=6)
        yield Served(f"http://127.0.0.1:{port}", store, clock, campaign)
    finally:
        server.should_exit = True
        thread.join(WAIT_SECONDS)
        store.close()


def console_errors(browser: Any) -> list[dict[str, Any]]:
    """The browser log's errors since the last read."""
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def charts_drawn(browser: Any) -> list[int]:
    """Data traces of each chart once plotly drew it (-1: not drawn)."""
    result: list[int] = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-chart]')).map(function (el) {"
        "  return el.classList.contains('js-plotly-plot') && el.data ? el.data.length : -1; });"
    )
    return result


def test_the_list_loads_without_console_errors(browser: Any, served: Served) -> None:
    browser.get(served.url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-experiment]")
    assert [row.get_attribute("data-experiment") for row in rows] == [served.campaign.experiment_id]
    assert "Spring sale" in rows[0].text
    assert console_errors(browser) == []


def test_the_experiment_page_draws_every_chart(browser: Any, served: Served) -> None:
    browser.get(served.experiment_url)
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: min(charts_drawn(b)) > 0)
    drawn = charts_drawn(browser)
    assert len(drawn) == 4
    assert drawn == [5, 5, 15, 5]  # per headline; the rate chart: a band and a line each
    assert console_errors(browser) == []


def test_the_page_shows_the_apis_numbers(browser: Any, served: Served) -> None:
    experiment_id = served.campaign.experiment_id
    browser.get(served.experiment_url)
    report = served.api(f"/v1/experiments/{experiment_id}/report")
    shown = {
        element.get_attribute("data-field"): element.get_attribute("data-value")
        for element in browser.find_elements(By.CSS_SELECTOR, "[data-field^='report.arms.']")
    }

    assert len(shown) == 9 * len(report["arms"])
    for field, value in shown.items():
        _, _, index, name, *rest = field.split(".")
        expected = report["arms"][int(index)][name]
        if rest:
            expected = expected[int(rest[0])]
        assert (None if value == "" else json.loads(value)) == expected, field
    opens = browser.find_element(By.CSS_SELECTOR, "[data-field='report.arms.3.opens']")
    assert opens.text == f"{report['arms'][3]['opens']:,}"


def test_the_page_updates_itself_when_opens_arrive(browser: Any, served: Served) -> None:
    experiment_id = served.campaign.experiment_id
    browser.get(served.experiment_url)
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: min(charts_drawn(b)) > 0)
    browser.execute_script("window.notReloaded = true;")
    cell = "[data-field='report.arms.3.opens']"
    before = browser.find_element(By.CSS_SELECTOR, cell).get_attribute("data-value")

    # Five more opens of headline 3 in the last wave, at the same moment.
    last = served.campaign.waves[-1]
    totals = {arm: served.campaign.waves[-1].reported[arm] for arm in last.reported}
    totals[3] += 5
    served.campaign.service.record_wave_opens(experiment_id, last.wave_id, dict(totals))
    last.reported = totals

    def changed(b: Any) -> bool:
        value = b.find_element(By.CSS_SELECTOR, cell).get_attribute("data-value")
        return bool(value != before)

    WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.25).until(changed)
    after = browser.find_element(By.CSS_SELECTOR, cell).get_attribute("data-value")
    report = served.api(f"/v1/experiments/{experiment_id}/report")
    assert int(after) == int(before) + 5 == report["arms"][3]["opens"]
    assert browser.execute_script("return window.notReloaded === true;")  # swapped in place
    assert min(charts_drawn(browser)) > 0
    assert console_errors(browser) == []


def test_with_keys_the_page_asks_for_one_and_a_read_only_key_opens_it(
    browser: Any, served: Served
) -> None:
    """Last: once a key exists, the server asks for one for good."""
    _, secret = create_key(served.store, "viewer", served.clock.now(), scope=KeyScope.READ)
    browser.delete_all_cookies()
    browser.get(served.experiment_url)

    assert "/login" in browser.current_url
    assert browser.find_elements(By.CSS_SELECTOR, "tr[data-arm]") == []
    field = browser.find_element(By.ID, "key")
    assert field.get_attribute("type") == "password"
    field.send_keys(secret)
    field.submit()

    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: b.current_url == served.experiment_url)
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: min(charts_drawn(b)) > 0)
    assert secret not in browser.current_url
    cookie = browser.get_cookie("headliner_key")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie;") == ""  # out of scripts' reach
    assert console_errors(browser) == []
