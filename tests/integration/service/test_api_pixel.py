"""The tracking pixel: a signed token in the URL, always a 1x1 GIF, an open counted once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from headliner.service.app import create_app
from headliner.service.auth import create_key
from headliner.service.clock import ManualClock
from headliner.service.routes.pixel import PIXEL_GIF
from headliner.service.settings import Settings
from headliner.storage.base import Store
from headliner.storage.sql import SqlStore

SECRET = "pixel-secret-" + "x" * 32
READER = ("203.0.113.7", 51000)  # the mail client's address (TEST-NET-3)
StoredEvents = Callable[[], list[tuple[Any, ...]]]  # the fixture of conftest.py


@pytest.fixture
def pixel_client(settings: Settings, store: Store, clock: ManualClock) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"pixel_secret": SECRET}), store=store, clock=clock)
    with TestClient(app, client=READER) as client:
        yield client


def _pixel_of_new_send(client: TestClient, **experiment: Any) -> tuple[str, str]:
    """A new experiment's id and the pixel of its first send."""
    body = {"name": "x", "headlines": ["A", "B"], **experiment}
    experiment_id = client.post("/v1/experiments", json=body).json()["id"]
    pixel = client.post(f"/v1/experiments/{experiment_id}/decisions").json()["open_pixel"]
    return experiment_id, pixel


def _opens(client: TestClient, experiment_id: str) -> int:
    report = client.get(f"/v1/experiments/{experiment_id}/report").json()
    return sum(arm["opens"] for arm in report["arms"])


def _assert_gif(response: object) -> None:
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "image/gif"  # type: ignore[attr-defined]
    assert response.content == PIXEL_GIF  # type: ignore[attr-defined]
    assert "no-store" in response.headers["cache-control"]  # type: ignore[attr-defined]


def test_the_pixel_counts_one_open_without_an_api_key(
    pixel_client: TestClient, store: Store
) -> None:
    experiment = pixel_client.post("/v1/experiments", json={"name": "x", "headlines": ["A", "B"]})
    experiment_id = experiment.json()["id"]
    decision = pixel_client.post(f"/v1/experiments/{experiment_id}/decisions").json()
    pixel = decision["open_pixel"]
    assert pixel.startswith("/pixel/") and decision["decision_id"] not in pixel  # unguessable
    _, secret = create_key(store, "pipeline", 0.0)  # from now on /v1 needs a key; /pixel not
    auth = {"Authorization": f"Bearer {secret}"}

    _assert_gif(pixel_client.get(pixel))
    _assert_gif(pixel_client.get(pixel))  # a mail client that loads it twice

    report = pixel_client.get(f"/v1/experiments/{experiment_id}/report", headers=auth).json()
    assert sum(arm["opens"] for arm in report["arms"]) == 1


@pytest.mark.parametrize(
    "token",
    ["garbage", "A" * 64, "", "%00", "a" * 300],
    ids=["garbage", "right-length-wrong-mac", "empty", "nul", "long"],
)
def test_a_bad_token_is_the_same_gif_and_counts_nothing(
    pixel_client: TestClient, token: str
) -> None:
    experiment_id = pixel_client.post(
        "/v1/experiments", json={"name": "x", "headlines": ["A", "B"]}
    ).json()["id"]
    pixel_client.post(f"/v1/experiments/{experiment_id}/decisions")

    response = pixel_client.get(f"/pixel/{token}.gif")

    assert response.status_code in (200, 404)  # an empty token matches no route at all
    if response.status_code == 200:
        _assert_gif(response)
    assert _opens(pixel_client, experiment_id) == 0


def test_a_tampered_token_names_no_decision(pixel_client: TestClient) -> None:
    experiment_id = pixel_client.post(
        "/v1/experiments", json={"name": "x", "headlines": ["A", "B"]}
    ).json()["id"]
    pixel = pixel_client.post(f"/v1/experiments/{experiment_id}/decisions").json()["open_pixel"]
    token = pixel.removeprefix("/pixel/").removesuffix(".gif")
    flipped = token[:10] + ("B" if token[10] != "B" else "C") + token[11:]

    _assert_gif(pixel_client.get(f"/pixel/{flipped}.gif"))

    assert _opens(pixel_client, experiment_id) == 0


def test_without_a_secret_decisions_carry_no_pixel(client: TestClient) -> None:
    experiment_id = client.post(
        "/v1/experiments", json={"name": "x", "headlines": ["A", "B"]}
    ).json()["id"]
    decision = client.post(f"/v1/experiments/{experiment_id}/decisions").json()

    assert decision["open_pixel"] is None
    _assert_gif(client.get("/pixel/" + "A" * 64 + ".gif"))  # still a GIF, counting nothing


def test_a_pixel_fetch_is_stored_as_an_open_event_with_its_user_agent_and_address(
    pixel_client: TestClient, stored_events: StoredEvents
) -> None:
    experiment_id, pixel = _pixel_of_new_send(pixel_client)

    _assert_gif(pixel_client.get(pixel, headers={"User-Agent": "Mozilla/5.0 (iPhone)"}))
    _assert_gif(pixel_client.get(pixel, headers={"User-Agent": "Mozilla/5.0 (iPhone)"}))

    # Both fetches are stored, neither as a machine's: a pixel cannot tell.
    assert stored_events() == [("open", False, "Mozilla/5.0 (iPhone)", READER[0])] * 2
    report = pixel_client.get(f"/v1/experiments/{experiment_id}/report").json()
    assert sum(arm["opens"] for arm in report["arms"]) == 1
    assert sum(arm["open_events"] for arm in report["arms"]) == 2
    assert report["machine_open_share"] == 0.0


@pytest.mark.parametrize("kpi", ["clicks", "conversions"])
def test_in_a_click_or_conversion_experiment_the_pixel_stores_the_open_and_counts_nothing(
    pixel_client: TestClient, stored_events: StoredEvents, kpi: str
) -> None:
    experiment_id, pixel = _pixel_of_new_send(pixel_client, kpi=kpi)

    _assert_gif(pixel_client.get(pixel))

    assert [event[:2] for event in stored_events()] == [("open", False)]
    assert _opens(pixel_client, experiment_id) == 0


def test_an_odd_user_agent_is_cut_and_cleaned_and_still_a_gif(
    pixel_client: TestClient, stored_events: StoredEvents
) -> None:
    experiment_id, pixel = _pixel_of_new_send(pixel_client)

    _assert_gif(pixel_client.get(pixel, headers={"User-Agent": "Mail\x01" + "x" * 5000}))

    ((_, _, user_agent, _),) = stored_events()
    assert user_agent == ("Mail" + "x" * 5000)[:1000]
    assert _opens(pixel_client, experiment_id) == 1


def test_a_client_address_that_is_no_ip_is_left_out(
    settings: Settings, store: Store, clock: ManualClock, stored_events: StoredEvents
) -> None:
    app = create_app(settings.model_copy(update={"pixel_secret": SECRET}), store=store, clock=clock)
    with TestClient(app) as client:  # its client is called "testclient"
        _, pixel = _pixel_of_new_send(client)
        _assert_gif(client.get(pixel))

    assert stored_events() == [("open", False, "testclient", None)]


def test_during_a_database_outage_the_pixel_is_still_the_gif(
    settings: Settings,
    database_url: str,
    database_outage: Callable[[], AbstractContextManager[None]],
    clock: ManualClock,
) -> None:
    store = SqlStore(database_url)  # opened after database_outage: SQLite's short busy timeout
    config = settings.model_copy(update={"pixel_secret": SECRET})
    try:
        with TestClient(create_app(config, store=store, clock=clock), client=READER) as client:
            experiment_id, pixel = _pixel_of_new_send(client)
            with database_outage():
                _assert_gif(client.get(pixel))  # stored nowhere, and no error page
            assert _opens(client, experiment_id) == 0
            _assert_gif(client.get(pixel))  # the mail client shows it again later
            assert _opens(client, experiment_id) == 1
    finally:
        store.close()
