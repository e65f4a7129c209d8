"""The HTTP routes, one module per resource; :data:`ERRORS` documents the error bodies.

Each ``/v1`` router carries its full prefix itself (rather than getting it
from ``include_router``), so the matched route in the ASGI scope names the
full path template that the latency metric is labelled with. API keys are
checked by :class:`~headliner.service.middleware.ServiceMiddleware`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from headliner.service.schemas import ErrorPublic, unsafe_text

API_PREFIX = "/v1"

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "Unreadable request (body or headers)"},
    401: {"model": ErrorPublic, "description": "Missing or unknown API key"},
    403: {"model": ErrorPublic, "description": "Revoked API key, or a read-only key that writes"},
    404: {"model": ErrorPublic, "description": "Unknown experiment, headline, decision or wave"},
    409: {"model": ErrorPublic, "description": "Conflicts with the experiment's current state"},
    413: {"model": ErrorPublic, "description": "Request body too large"},
    422: {"model": ErrorPublic, "description": "Invalid request: the errors name the fields"},
    503: {
        "model": ErrorPublic,
        "description": "The database is unavailable for now; retry after Retry-After seconds",
    },
}


def path_errors(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Validation errors for path parameters holding control characters (no id has them).

    Refused here, because PostgreSQL cannot even compare text holding NUL.
    """
    return [
        {
            "type": "string_unsafe",
            "loc": ("path", name),
            "msg": "String must not contain control characters (such as NUL) or lone surrogates",
        }
        for name, value in params.items()
        if isinstance(value, str) and unsafe_text(value)
    ]


class CheckedRoute(APIRoute):
    """A FastAPI route that refuses path parameters holding control characters (422)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, behind the path parameter check."""
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            refused = path_errors(request.path_params)
            if refused:
                raise RequestValidationError(refused)
            return await handler(request)

        return checked
