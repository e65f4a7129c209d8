"""Locust load test of the decision service: a sending pipeline plus a dashboard.

Every simulated user is one sender. Tasks are weighted decide 10 : open 3 :
report 1 (issue 3):

- decide: ``POST /v1/experiments/{id}/decisions`` for one send;
- open: the tracking pixel of one of *this user's* sends fires. The recipient
  opens with the true rate of the headline it got, so most
  opens refer to a send that was really opened; when no such open is waiting
  (the open task runs more often than ~21% of sends open), the pixel of an
  earlier send fires again, which exercises the idempotent duplicate path
  (a reopened email fires its pixel twice in real life too);
- report: ``GET /v1/experiments/{id}/report``, a dashboard refresh.

One experiment over the reference headlines is created once per run, at
``test_start``, and shared by every user (one hot experiment, the realistic
worst case for the hot row). Requests are named by their route template so the
statistics group them.

Run it through ``make load-test`` (``tests/performance/run_load_test.py``
starts a server on a fresh database), or by hand against a running server::

    .venv/bin/locust -f tests/performance/locustfile.py --host http://127.0.0.1:8000

Extra options: ``--experiment-id`` reuses an experiment, ``--api-key`` (or
``HEADLINER_API_KEY``) sends ``Authorization: Bearer``, ``--wait-min`` and
``--wait-max`` set the think time between a user's requests, in seconds.

The file is not named ``test_*.py`` and ``conftest.py`` here tells pytest to
ignore it: importing locust monkey-patches the standard library with gevent.
"""

from __future__ import annotations

import collections
import logging
import os
from typing import Any

import numpy as np
import requests
from locust import HttpUser, events, task
from locust.env import Environment

logger = logging.getLogger("headliner.loadtest")

# the seed design, restated here rather than imported: this file is a black-box HTTP
# client and should not need the server's package (nor its numba import time).
REFERENCE_HEADLINES: dict[str, float] = {
    "48 Hours Only: Save 25%": 0.18,
    "Your Exclusive Spring Offer Is Here": 0.21,
    "Don't Miss Your Member Discount": 0.16,
    "Ending Tonight: Final Chance to Save": 0.24,
    "A Little Something Just for You": 0.20,
}
TRUE_RATES = np.array(list(REFERENCE_HEADLINES.values()))

# A short attribution window lets sends mature into non-opens during a two-minute
# run, so the posterior (and the report's pending/matured split) moves as it would
# in a long campaign. Automatic stopping is off: a declared winner would turn every
# later decision into a constant and stop measuring the Thompson path.
EXPERIMENT_BODY: dict[str, Any] = {
    "name": "load test: reference headlines",
    "headlines": list(REFERENCE_HEADLINES),
    "policy": "thompson",
    "attribution_window_seconds": 30.0,
    "stopping": {"enabled": False},
}

DECIDE_NAME = "/v1/experiments/[id]/decisions"
OPEN_NAME = "/v1/experiments/[id]/decisions/[decision_id]/open"
REPORT_NAME = "/v1/experiments/[id]/report"

# Each user remembers at most this many of its sends for duplicate opens: bounded
# memory however long the run.
REMEMBERED_SENDS = 1000

_shared: dict[str, str] = {}


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--experiment-id", default="", help="Use this experiment instead of creating one"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("HEADLINER_API_KEY", ""),
        help="API key (Authorization: Bearer); default $HEADLINER_API_KEY",
    )
    parser.add_argument("--wait-min", type=float, default=0.05, help="Min think time, seconds")
    parser.add_argument("--wait-max", type=float, default=0.15, help="Max think time, seconds")


def _auth_headers(environment: Environment) -> dict[str, str]:
    key = getattr(environment.parsed_options, "api_key", "") if environment.parsed_options else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


@events.test_start.add_listener
def _create_experiment(environment: Environment, **_: Any) -> None:
    """Create the run's shared experiment once, before any user starts."""
    options = environment.parsed_options
    given = getattr(options, "experiment_id", "") if options else ""
    if given:
        _shared["experiment_id"] = given
        return
    response = requests.post(
        f"{environment.host}/v1/experiments",
        json=EXPERIMENT_BODY,
        headers=_auth_headers(environment),
        timeout=30,
    )
    if response.status_code != 201:
        logger.error("creating the experiment failed: %s %s", response.status_code, response.text)
        environment.process_exit_code = 1
        if environment.runner is not None:
            environment.runner.quit()
        return
    _shared["experiment_id"] = response.json()["id"]
    logger.info("experiment %s created", _shared["experiment_id"])


class Sender(HttpUser):
    """One sending pipeline: decisions for its sends, opens as their pixels fire."""

    def wait_time(self) -> float:
        """Uniform think time between ``--wait-min`` and ``--wait-max``."""
        options = self.environment.parsed_options
        low = getattr(options, "wait_min", 0.05)
        high = max(low, getattr(options, "wait_max", 0.15))
        return float(self.rng.uniform(low, high))

    def on_start(self) -> None:
        """Pick up the shared experiment; each user gets its own random stream."""
        # Spawned from OS entropy: users must not all open the same sends in lockstep.
        self.rng = np.random.default_rng()
        self.experiment_id = _shared.get("experiment_id", "")
        if not self.experiment_id:
            self.stop()  # creation failed at test_start; the run is quitting
            return
        self.client.headers.update(_auth_headers(self.environment))
        self.base = f"/v1/experiments/{self.experiment_id}"
        self.to_open: collections.deque[str] = collections.deque()
        self.sent: collections.deque[str] = collections.deque(maxlen=REMEMBERED_SENDS)

    @task(10)
    def decide(self) -> None:
        """Ask for the headline of one send; the recipient opens with its true rate."""
        with self.client.post(
            f"{self.base}/decisions", json={}, name=DECIDE_NAME, catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
                return
            body = response.json()
            arm = body.get("arm")
            if not isinstance(arm, int) or not 0 <= arm < len(TRUE_RATES):
                response.failure(f"unexpected body: {body}")
                return
            response.success()
        self.sent.append(body["decision_id"])
        if self.rng.random() < TRUE_RATES[arm]:
            self.to_open.append(body["decision_id"])

    @task(3)
    def open(self) -> None:
        """Fire the pixel of an opened send, or of an earlier send again (a duplicate)."""
        if self.to_open:
            decision_id = self.to_open.popleft()
        elif self.sent:
            decision_id = self.sent[int(self.rng.integers(len(self.sent)))]
        else:
            self.decide()  # nothing sent yet: a send is what the pipeline would do
            return
        with self.client.post(
            f"{self.base}/decisions/{decision_id}/open", name=OPEN_NAME, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
            elif response.json().get("result") not in ("counted", "duplicate", "late"):
                response.failure(f"unexpected body: {response.text[:200]}")
            else:
                response.success()

    @task(1)
    def report(self) -> None:
        """Refresh the dashboard."""
        with self.client.get(
            f"{self.base}/report", name=REPORT_NAME, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
            elif len(response.json().get("arms", ())) != len(TRUE_RATES):
                response.failure(f"unexpected body: {response.text[:200]}")
            else:
                response.success()
