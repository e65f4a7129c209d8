"""The dashboard's routes on SQLite and PostgreSQL: pages, data, key cookie, read-only keys."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from dashboard_campaign import DashboardCampaign, start_campaign
from fastapi.testclient import TestClient

from headliner.service.auth import create_key
from headliner.service.clock import ManualClock
from headliner.service.routes.dashboard import KEY_COOKIE
from headliner.service.schemas import ErrorPublic
from headliner.service.settings import Settings
from headliner.storage.base import KeyScope, Store

DATA_VALUE = re.compile(r'<[^>]*\bdata-field="([^"]+)"[^>]*\bdata-value="([^"]*)"')


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The service's test settings with a snapshot every 10 minutes (hourly in the campaign).

    A snapshot on every refresh would give the page and the API call after it
    one snapshot apart.
    """
    return settings.model_copy(update={"snapshot_interval_seconds": 600.0})


@pytest.fixture
def campaign(client: TestClient, clock: ManualClock) -> DashboardCampaign:
    """Three hours of the spring-sale campaign, through the app's own service."""
    service = client.app.state.context.service  # type: ignore[attr-defined]
    return start_campaign(service, clock, hours=3, wave_size=400, decisions_per_hour=10)


def page_values(html: str) -> dict[str, str]:
    """Every ``data-field`` of a page with its ``data-value`` (unescaped)."""
    return {field: unescape(value) for field, value in DATA_VALUE.findall(html)}


def at(document: Any, path: str) -> Any:
    for part in path.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_the_pages_are_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith(("/experiments", "/login"))]


def test_the_list_shows_every_experiment_with_its_leader(
    client: TestClient, campaign: DashboardCampaign
) -> None:
    page = client.get("/")
    report = client.get(f"/v1/experiments/{campaign.experiment_id}/report").json()
    leader = max(report["arms"], key=lambda arm: arm["p_best"] or 0.0)

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    row = page.text.split(f'data-experiment="{campaign.experiment_id}"')[1].split("</tr>")[0]
    assert "Spring sale" in row and leader["headline"] in row
    assert f'data-value="{sum(a["sends"] for a in report["arms"])}"' in row
    assert client.get("/?status=running").text.count("data-experiment=") == 1
    assert client.get("/?status=completed").text.count("data-experiment=") == 0


def test_an_unknown_status_filter_is_named(client: TestClient) -> None:
    page = client.get("/?status=done")
    assert page.status_code == 422
    assert "Unknown status &#39;done&#39;" in page.text and "winner_declared" in page.text


def test_the_experiment_page_shows_the_reports_numbers(
    client: TestClient, campaign: DashboardCampaign
) -> None:
    """The page and the API at the same moment (the clock stands still): equal numbers."""
    experiment_id = campaign.experiment_id
    page = client.get(f"/experiments/{experiment_id}")
    report = client.get(f"/v1/experiments/{experiment_id}/report").json()

    assert page.status_code == 200
    values = page_values(page.text)
    arm_fields = [f for f in values if f.startswith("report.arms.")]
    assert len(arm_fields) == 9 * len(report["arms"])
    for field in arm_fields + ["report.stopping_status.p_best", "report.generated_at"]:
        expected = at({"report": report}, field)
        assert values[field] == ("" if expected is None else json.dumps(expected)), field
    embedded = page.text.split('<script type="application/json" id="page-data">')[1]
    data = json.loads(embedded.split("</script>")[0])
    assert data["report"] == report
    assert set(data["charts"]) == {"p_best", "allocation", "rate", "density"}
    assert f'data-refresh-url="/experiments/{experiment_id}/data"' in page.text


def test_the_data_route_feeds_the_refresh(client: TestClient, campaign: DashboardCampaign) -> None:
    experiment_id = campaign.experiment_id
    before = client.get(f"/experiments/{experiment_id}/data").json()
    campaign.report_opens()
    campaign.clock.advance(1800.0)
    campaign.report_opens()  # new opens are in
    after = client.get(f"/experiments/{experiment_id}/data")
    report = client.get(f"/v1/experiments/{experiment_id}/report").json()

    assert after.headers["cache-control"] == "no-store"
    body = after.json()
    assert body["data"]["report"] == report
    assert set(body["blocks"]) == {
        "status",
        "leaderboard",
        "legend",
        "diagnostics",
        "health",
        "updated",
    }
    assert sum(a["opens"] for a in report["arms"]) > sum(
        a["opens"] for a in before["data"]["report"]["arms"]
    )
    opens = page_values(body["blocks"]["leaderboard"])["report.arms.3.opens"]
    assert opens == str(report["arms"][3]["opens"])
    assert body["status_label"] in {"running", "burn-in", "winner declared"}


def test_a_missing_experiment_is_a_404(client: TestClient) -> None:
    page = client.get("/experiments/nope")
    data = client.get("/experiments/nope/data")
    assert page.status_code == 404 and "Experiment &#39;nope&#39; not found." in page.text
    assert data.status_code == 404
    assert ErrorPublic.model_validate(data.json()).detail[0].type == "not_found"


def test_static_files_are_versioned_and_kept_a_year(client: TestClient) -> None:
    page = client.get("/").text
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    urls += re.findall(r'src="(/static/[^"]+)"', client.get("/experiments/x").text)
    assert any(u.endswith(".css") for u in urls)
    for url in set(urls):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/static/nope.js").status_code == 404


def test_plotly_comes_from_the_wheel(client: TestClient, campaign: DashboardCampaign) -> None:
    page = client.get(f"/experiments/{campaign.experiment_id}").text
    (url,) = re.findall(r'src="(/static/plotly-[^"]+)"', page)
    script = client.get(url)
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert b"plotly.js v" in script.content[:200]
    assert "cdn." not in page and "https://" not in page  # nothing fetched from elsewhere


# --- access ------------------------------------------------------------------------------
@pytest.fixture
def viewer(client: TestClient, store: Store, clock: ManualClock) -> Iterator[str]:
    """A read-only key (which switches authentication on)."""
    _, secret = create_key(store, "viewer", clock.now(), scope=KeyScope.READ)
    yield secret


def test_with_keys_the_pages_ask_for_one(client: TestClient, viewer: str) -> None:
    page = client.get("/experiments/abc?x=1", follow_redirects=False)
    data = client.get("/experiments/abc/data")
    login = client.get("/login?next=%2Fexperiments%2Fabc")

    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fexperiments%2Fabc%3Fx%3D1"
    assert data.status_code == 401
    assert ErrorPublic.model_validate(data.json()).detail[0].loc == ["cookie", KEY_COOKIE]
    assert login.status_code == 200
    assert 'method="post" action="/login"' in login.text
    assert 'value="/experiments/abc"' in login.text


def test_the_key_is_posted_once_and_kept_in_a_strict_cookie(
    client: TestClient, viewer: str, campaign: DashboardCampaign
) -> None:
    wrong = client.post("/login", data={"key": "hl_nope", "next": "/"})
    empty = client.post("/login", data={"key": "", "next": "/"})
    signed = client.post(
        "/login",
        data={"key": viewer, "next": f"/experiments/{campaign.experiment_id}"},
        follow_redirects=False,
    )

    assert wrong.status_code == 401 and "Unknown API key." in wrong.text
    assert empty.status_code == 401 and "Enter an API key." in empty.text
    assert signed.status_code == 303
    assert signed.headers["location"] == f"/experiments/{campaign.experiment_id}"
    assert viewer not in signed.headers["location"]
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{KEY_COOKIE}={viewer};")
    for flag in ("HttpOnly", "Path=/", "SameSite=strict"):
        assert flag.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http: a Secure cookie would never come back

    # The client keeps the cookie: a read-only key may view.
    page = client.get(f"/experiments/{campaign.experiment_id}")
    assert page.status_code == 200 and 'action="/logout"' in page.text
    assert client.get(f"/experiments/{campaign.experiment_id}/data").status_code == 200

    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (
        f'{KEY_COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    )
    assert client.get("/", follow_redirects=False).status_code == 303


def test_over_https_the_cookie_is_secure(app: Any, viewer: str) -> None:
    with TestClient(app, base_url="https://testserver") as secure:
        signed = secure.post("/login", data={"key": viewer}, follow_redirects=False)
    assert "secure" in signed.headers["set-cookie"].lower()


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil"])
def test_sign_in_goes_nowhere_but_this_site(client: TestClient, viewer: str, target: str) -> None:
    signed = client.post("/login", data={"key": viewer, "next": target}, follow_redirects=False)
    assert signed.headers["location"] == "/"


def test_a_revoked_key_in_the_cookie_is_refused(
    client: TestClient, store: Store, clock: ManualClock
) -> None:
    record, secret = create_key(store, "old", clock.now())
    client.post("/login", data={"key": secret})
    assert client.get("/", follow_redirects=False).status_code == 200
    store.revoke_api_key(record.id, clock.now())
    assert client.get("/", follow_redirects=False).status_code == 303


def test_no_key_in_urls_or_the_access_log(
    client: TestClient, viewer: str, caplog: pytest.LogCaptureFixture
) -> None:
    access = logging.getLogger("headliner.access")
    access.addHandler(caplog.handler)  # the headliner loggers do not propagate to the root
    try:
        with caplog.at_level(logging.INFO, logger="headliner.access"):
            client.post("/login", data={"key": viewer, "next": "/"})
            client.get("/")
    finally:
        access.removeHandler(caplog.handler)
    lines = [json.dumps({**vars(r)}, default=str) for r in caplog.records]
    assert len(lines) >= 2 and all(viewer not in line for line in lines)
    assert {r.__dict__["path"] for r in caplog.records} >= {"/login", "/"}


def test_without_keys_there_is_nothing_to_sign_in_to(client: TestClient) -> None:
    assert client.get("/login", follow_redirects=False).status_code == 303
    assert client.get("/").status_code == 200
    assert 'action="/logout"' not in client.get("/").text


def test_the_page_speaks_of_the_kpi_and_shows_machine_opens(client: TestClient) -> None:
    made = client.post(
        "/v1/experiments", json={"name": "clicks", "headlines": ["A", "B"], "kpi": "clicks"}
    ).json()
    url = f"/v1/experiments/{made['id']}/decisions"
    decision = client.post(url).json()["decision_id"]
    client.post(f"{url}/{decision}/events", json={"type": "open", "machine": True})
    client.post(f"{url}/{decision}/events", json={"type": "open"})

    page = client.get(f"/experiments/{made['id']}").text
    values = page_values(page)

    assert '<th class="num wide-ish">Clicks</th>' in page and "Click rate" in page
    assert "Open rate" not in page
    # One machine open of two open events, as the report says.
    report = client.get(f"/v1/experiments/{made['id']}/report").json()
    assert report["machine_open_share"] == 0.5
    assert float(values["report.machine_open_share"]) == 0.5
    assert "of 2 open events: stored, never counted" in page
