"""An experiment's KPI, and the events of sends over HTTP: machine opens stored, not counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from headliner.service.clock import ManualClock
from headliner.service.schemas import iso_time

NewExperiment = Callable[..., dict[str, Any]]
StoredEvents = Callable[[], list[tuple[Any, ...]]]  # the fixture of conftest.py
HOUR = 3600.0


def _decide(client: TestClient, experiment_id: str, key: str | None = None) -> dict[str, Any]:
    headers = {} if key is None else {"Idempotency-Key": key}
    response = client.post(f"/v1/experiments/{experiment_id}/decisions", headers=headers)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _event(client: TestClient, decision: dict[str, Any], **body: Any) -> dict[str, Any]:
    url = f"/v1/experiments/{decision['experiment_id']}/decisions/{decision['decision_id']}"
    response = client.post(f"{url}/events", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _report(client: TestClient, experiment_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/experiments/{experiment_id}/report")
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _total(report: dict[str, Any], field: str) -> int:
    return sum(int(arm[field]) for arm in report["arms"])


# --- the KPI of an experiment ------------------------------------------------------------
@pytest.mark.parametrize("kpi", ["opens", "clicks", "conversions"])
def test_an_experiment_keeps_the_kpi_it_was_created_with(
    client: TestClient, new_experiment: NewExperiment, kpi: str
) -> None:
    created = new_experiment(kpi=kpi)

    assert created["kpi"] == kpi
    assert client.get(f"/v1/experiments/{created['id']}").json()["kpi"] == kpi
    assert _report(client, created["id"])["kpi"] == kpi


def test_the_kpi_is_opens_by_default(new_experiment: NewExperiment) -> None:
    assert new_experiment()["kpi"] == "opens"


@pytest.mark.parametrize("kpi", ["revenue", "Opens", 1, None])
def test_an_unknown_kpi_is_422_naming_the_field(client: TestClient, kpi: object) -> None:
    response = client.post(
        "/v1/experiments", json={"name": "x", "headlines": ["A", "B"], "kpi": kpi}
    )

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "kpi"]
    assert "'opens', 'clicks' or 'conversions'" in error["msg"]
    assert client.get("/v1/experiments").json() == []


# --- what counts -------------------------------------------------------------------------
def test_an_opens_experiment_counts_a_human_open_event_and_not_a_machine_one(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment(kpi="opens")
    human, proxied = _decide(client, experiment["id"]), _decide(client, experiment["id"])
    clock.advance(60.0)

    counted = _event(client, human, type="open", user_agent="Mozilla/5.0 (iPhone)")
    machine = _event(
        client,
        proxied,
        type="open",
        machine=True,
        user_agent="Mozilla/5.0",
        proxy_address="17.58.0.1",
    )

    assert counted == {
        "event_id": counted["event_id"],
        "decision_id": human["decision_id"],
        "arm": human["arm"],
        "type": "open",
        "machine": False,
        "at": iso_time(clock.now()),
        "counted": True,
        "result": "counted",
        "reason": None,
    }
    assert (machine["counted"], machine["result"]) == (False, None)
    assert machine["reason"] == "machine open: stored, not counted"
    report = _report(client, experiment["id"])
    assert _total(report, "opens") == 1
    assert report["arms"][proxied["arm"]]["machine_opens"] == 1
    assert (_total(report, "open_events"), _total(report, "machine_opens")) == (2, 1)
    # The machine open did not settle its send: a reader's open still counts.
    assert _event(client, proxied, type="open")["result"] == "counted"
    assert _total(_report(client, experiment["id"]), "opens") == 2


def test_a_repeated_event_is_stored_again_and_never_counts_twice(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    decision = _decide(client, experiment["id"])
    url = f"/v1/experiments/{experiment['id']}/decisions/{decision['decision_id']}"

    first = _event(client, decision, type="open")
    again = _event(client, decision, type="open")
    by_route = client.post(f"{url}/open").json()

    assert (first["result"], again["result"], by_route["result"]) == (
        "counted",
        "duplicate",
        "duplicate",
    )
    assert again["counted"] is False and "already recorded" in again["reason"]
    assert again["event_id"] != first["event_id"]
    report = _report(client, experiment["id"])
    assert (_total(report, "opens"), _total(report, "open_events")) == (1, 2)


def test_a_click_experiment_counts_clicks_not_opens(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment(kpi="clicks")
    decision = _decide(client, experiment["id"])

    opened = _event(client, decision, type="open")
    scanned = _event(client, decision, type="click", machine=True)
    clicked = _event(client, decision, type="click")

    assert (opened["counted"], opened["result"]) == (False, None)
    assert opened["reason"] == "click experiment: opens are stored, not counted"
    assert scanned["reason"] == "machine click: stored, not counted"
    assert (clicked["counted"], clicked["result"], clicked["reason"]) == (True, "counted", None)
    report = _report(client, experiment["id"])
    assert (_total(report, "opens"), _total(report, "open_events")) == (1, 1)


def test_a_conversion_experiment_counts_conversions_only(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment(kpi="conversions")
    decision = _decide(client, experiment["id"])

    assert _event(client, decision, type="click")["counted"] is False
    assert _event(client, decision, type="open")["counted"] is False
    assert _event(client, decision, type="conversion")["counted"] is True
    assert _total(_report(client, experiment["id"]), "opens") == 1


def test_an_event_after_the_window_is_late_stored_not_counted(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment(attribution_window_seconds=HOUR)
    decision = _decide(client, experiment["id"])
    clock.advance(2 * HOUR)

    late = _event(client, decision, type="open")

    assert (late["counted"], late["result"]) == (False, "late")
    assert "after the attribution window" in late["reason"]
    line = _report(client, experiment["id"])["arms"][decision["arm"]]
    assert (line["opens"], line["late_opens"], line["open_events"]) == (0, 1, 1)


@pytest.mark.parametrize("key", ["msg-1", "<0100018f.a1@email.example.com>"])
def test_an_event_is_reported_by_the_send_key(
    client: TestClient, new_experiment: NewExperiment, key: str
) -> None:
    experiment = new_experiment()
    decision = _decide(client, experiment["id"], key=key)
    url = f"/v1/experiments/{experiment['id']}/decisions/by-key/{quote(key, safe='')}/events"

    machine = client.post(url, json={"type": "open", "machine": True})
    human = client.post(url, json={"type": "open"})
    unknown = client.post(url.replace(quote(key, safe=""), "nope"), json={"type": "open"})

    assert (machine.status_code, human.status_code) == (201, 201)
    assert machine.json()["decision_id"] == human.json()["decision_id"] == decision["decision_id"]
    assert (machine.json()["counted"], human.json()["counted"]) == (False, True)
    assert unknown.status_code == 404
    report = _report(client, experiment["id"])
    assert (_total(report, "opens"), _total(report, "open_events")) == (1, 2)


# --- refused events store nothing ---------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "type"),
        ({"type": "bounce"}, "type"),
        ({"type": "open", "machine": "yes"}, "machine"),
        ({"type": "open", "machine": 1}, "machine"),
        ({"type": "open", "user_agent": "x" * 1001}, "user_agent"),
        ({"type": "open", "user_agent": "Mozilla\u0000"}, "user_agent"),
        ({"type": "open", "proxy_address": "17.58.0.300"}, "proxy_address"),
        ({"type": "open", "proxy_address": "apple.com"}, "proxy_address"),
        ({"type": "open", "proxy_address": 17}, "proxy_address"),
        ({"type": "open", "extra": 1}, "extra"),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else None,
)
def test_a_bad_event_is_422_naming_the_field_and_stores_nothing(
    client: TestClient,
    new_experiment: NewExperiment,
    stored_events: StoredEvents,
    body: dict[str, Any],
    field: str,
) -> None:
    experiment = new_experiment()
    decision = _decide(client, experiment["id"])
    url = f"/v1/experiments/{experiment['id']}/decisions/{decision['decision_id']}/events"

    response = client.post(url, json=body)

    assert response.status_code == 422, response.text
    assert ["body", field] in [error["loc"] for error in response.json()["detail"]]
    report = _report(client, experiment["id"])
    assert (_total(report, "opens"), _total(report, "open_events")) == (0, 0)
    assert stored_events() == []


def test_what_the_provider_knew_is_stored_as_sent_the_address_canonical(
    client: TestClient,
    new_experiment: NewExperiment,
    stored_events: StoredEvents,
    clock: ManualClock,
) -> None:
    decision = _decide(client, new_experiment()["id"])

    _event(
        client,
        decision,
        type="open",
        machine=True,
        user_agent="Mozilla/5.0",
        proxy_address=" 2001:DB8:0:0::1 ",
    )
    clock.advance(1.0)
    _event(client, decision, type="click", proxy_address="17.58.0.1")

    assert stored_events() == [
        ("open", True, "Mozilla/5.0", "2001:db8::1"),
        ("click", False, None, "17.58.0.1"),
    ]


def test_an_event_of_an_unknown_or_foreign_decision_stores_nothing(
    client: TestClient, new_experiment: NewExperiment, stored_events: StoredEvents
) -> None:
    mine, theirs = new_experiment(name="mine"), new_experiment(name="theirs")
    decision = _decide(client, theirs["id"])
    url = f"/v1/experiments/{mine['id']}/decisions"

    unknown = client.post(f"{url}/nope/events", json={"type": "open"})
    foreign = client.post(f"{url}/{decision['decision_id']}/events", json={"type": "open"})
    no_experiment = client.post(
        f"/v1/experiments/nope/decisions/{decision['decision_id']}/events", json={"type": "open"}
    )

    assert (unknown.status_code, foreign.status_code, no_experiment.status_code) == (404, 409, 404)
    for experiment in (mine, theirs):
        report = _report(client, experiment["id"])
        assert (_total(report, "opens"), _total(report, "open_events")) == (0, 0)
    assert stored_events() == []


# --- the report ----------------------------------------------------------------------------
def test_the_report_shows_the_machine_share_of_open_events(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment(headlines=["A", "B"], burn_in_per_arm=0)
    assert _report(client, experiment["id"])["machine_open_share"] is None
    sends = [_decide(client, experiment["id"]) for _ in range(8)]

    # 3 of 8 open events are a machine's: 3/8 = 0.375 exactly.
    for i, decision in enumerate(sends):
        _event(client, decision, type="open", machine=i < 3)
    _event(client, sends[0], type="click")  # not an open event

    report = _report(client, experiment["id"])
    assert report["machine_open_share"] == 0.375
    assert (_total(report, "open_events"), _total(report, "machine_opens")) == (8, 3)
    assert _total(report, "opens") == 5
    for arm in report["arms"]:
        mine = [i for i, d in enumerate(sends) if d["arm"] == arm["arm"]]
        assert arm["open_events"] == len(mine)
        assert arm["machine_opens"] == sum(i < 3 for i in mine)
