"""The HTTP routes, one module per resource; :data:`ERRORS` documents the error bodies.

Each ``/v1`` router carries its full prefix itself (rather than getting it
from ``include_router``), so the matched route in the ASGI scope names the
full path template that the latency metric is labelled with. API keys are
checked by :class:`~headliner.service.middleware.ServiceMiddleware`.
"""

from __future__ import annotations

from typing import Any

from headliner.service.schemas import ErrorPublic

API_PREFIX = "/v1"

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Missing or unknown API key"},
    403: {"model": ErrorPublic, "description": "Revoked API key"},
    404: {"model": ErrorPublic, "description": "Unknown experiment, headline, decision or wave"},
    409: {"model": ErrorPublic, "description": "Conflicts with the experiment's current state"},
    413: {"model": ErrorPublic, "description": "Request body too large"},
}
