"""The tracking pixel: a signed token in the URL, always a 1x1 GIF, an open counted once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from headliner.service.app import create_app
from headliner.service.auth import create_key
from headliner.service.clock import ManualClock
from headliner.service.routes.pixel import PIXEL_GIF
from headliner.service.settings import Settings
from headliner.storage.base import Store

SECRET = "pixel-secret-" + "x" * 32


@pytest.fixture
def pixel_client(settings: Settings, store: Store, clock: ManualClock) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"pixel_secret": SECRET}), store=store, clock=clock)
    with TestClient(app) as client:
        yield client


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
