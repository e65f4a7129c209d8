"""Errors raised by Headliner.

The hierarchy, one tree for the library, the service and the CLI::

    HeadlinerError
    ├── InvalidParameterError (also ValueError)   bad input at a boundary
    ├── NotFoundError (also LookupError)         unknown experiment, headline, decision, key
    ├── ConflictError                            the request clashes with current state
    ├── AuthError                                missing, unknown or revoked API key
    └── StoreUnavailableError                    the database is down, restarting or busy

The service maps them to 422, 404, 409, 401/403 and 503 in one place; the CLI
maps them to exit code 2 and one line on stderr.
"""

from __future__ import annotations


class HeadlinerError(Exception):
    """Base class of every error Headliner raises on purpose."""


class InvalidParameterError(HeadlinerError, ValueError):
    """A parameter is outside its allowed range or has the wrong type (``parameter``: its name)."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class NotFoundError(HeadlinerError, LookupError):
    """An experiment, headline, decision, wave or API key does not exist."""


class ConflictError(HeadlinerError):
    """The request is well formed but clashes with the current state.

    ``loc`` names the part of the request that clashes, when one does (such
    as ``("header", "idempotency-key")``); empty for the state as a whole.
    """

    def __init__(self, message: str, *, loc: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc


class AuthError(HeadlinerError):
    """A request lacks a valid API key (``revoked`` tells a revoked key apart)."""

    def __init__(self, message: str, *, revoked: bool = False) -> None:
        super().__init__(message)
        self.revoked = revoked


class StoreUnavailableError(HeadlinerError):
    """The database cannot serve the request right now; the same request may succeed later.

    Raised for a server that is down, restarting or refusing connections, a
    connection it ended, or a SQLite file that stayed locked past the busy
    timeout. Whether a write that failed this way was stored is unknown: retry
    it with its idempotency key. ``retry_after`` is the suggested wait in
    seconds (the service's ``Retry-After`` header).
    """

    #: Seconds a client should wait before retrying, unless an instance says otherwise.
    retry_after: int = 1

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = retry_after
