"""API keys: made once, stored as a SHA-256 hash, checked through a short-lived cache.

A key reads ``hl_<43 url-safe characters>`` (256 random bits), so a plain
SHA-256 is enough to store it: there is nothing to brute-force, unlike a
password. The secret is shown once, by ``headliner keys create``.

Once any key exists, every ``/v1`` route needs ``Authorization: Bearer <key>``,
and the dashboard the key in its cookie. A read-only key (scope ``read``) may
read: GET on /v1 and the dashboard; any other /v1 request with it is a 403.
To keep authentication off the database on the hot path, :class:`KeyCache`
reuses "does any key exist?" and each key lookup for ``ttl`` seconds
(``HEADLINER_API_KEY_CACHE_SECONDS``, default 5): a key revoked or created by
another process takes effect within that time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from headliner.core.errors import AuthError
from headliner.core.validation import fail
from headliner.service.clock import Clock
from headliner.storage.base import ApiKeyRecord, KeyScope, Store

KEY_PREFIX = "hl_"


def hash_key(secret: str) -> str:
    """Hex SHA-256 of a key's secret, the only form that is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(
    store: Store, name: str, now: float, *, scope: KeyScope = KeyScope.FULL
) -> tuple[ApiKeyRecord, str]:
    """Make a new key called ``name``; return its record and the secret (shown once).

    A ``read`` key may only read: GET on /v1 and the dashboard.
    """
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "ApiKey", "a non-empty string", name)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return store.create_api_key(name.strip(), hash_key(secret), now, scope=scope), secret


#: Methods a read-only key may use.
READ_METHODS = frozenset({"GET", "HEAD"})


def read_only_refusal(record: ApiKeyRecord | None, method: str) -> str | None:
    """Why ``record`` may not make a ``method`` request, or None when it may."""
    if record is None or record.scope is not KeyScope.READ or method in READ_METHODS:
        return None
    return (
        f"API key {record.id} is read-only: it may only read (GET); "
        "use a full key to change anything."
    )


class KeyCache:
    """Answers "is this bearer token allowed?" with at most one store hit per ``ttl``.

    Parameters
    ----------
    store : Store
    clock : Clock
        Only ages the cache entries.
    ttl : float
        Seconds a lookup is reused (0 = ask the store every time).
    """

    def __init__(self, store: Store, clock: Clock, ttl: float) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._any: tuple[bool, float] | None = None
        self._keys: dict[str, tuple[ApiKeyRecord | None, float]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every cached answer (after a change made in this process)."""
        with self._lock:
            self._any = None
            self._keys.clear()

    def auth_required(self) -> bool:
        """Whether any key exists (then every /v1 route needs one)."""
        now = self._clock.now()
        cached = self._any
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        required = self._store.has_api_keys()
        self._any = (required, now)
        return required

    def check(self, token: str | None) -> ApiKeyRecord | None:
        """Return the key of ``token``; None when no key is needed.

        Raises
        ------
        AuthError
            Missing or unknown key (401), or a revoked one (``revoked=True``, 403).
        """
        if not self.auth_required():
            return None
        if not token:
            raise AuthError("Missing API key: send 'Authorization: Bearer <key>'.")
        digest = hash_key(token)
        now = self._clock.now()
        cached = self._keys.get(digest)
        if cached is not None and now - cached[1] < self._ttl:
            record = cached[0]
        else:
            record = self._store.find_api_key(digest)
            with self._lock:
                if len(self._keys) > 10_000:  # unknown tokens must not grow it without bound
                    self._keys.clear()
                self._keys[digest] = (record, now)
        if record is None:
            raise AuthError("Unknown API key.")
        if record.revoked_at is not None:
            raise AuthError(f"API key {record.id} has been revoked.", revoked=True)
        return record


class PixelSigner:
    """Tokens for tracking pixels: a decision's ids with an HMAC, unguessable without the secret.

    A mail client fetches ``/pixel/<token>.gif`` with no API key, so the token
    itself must prove the open: it carries the experiment and decision ids
    (32 bytes) and the first 16 bytes of their HMAC-SHA256 under
    ``HEADLINER_PIXEL_SECRET``, all base64url (64 characters). Every worker
    and every restart with the same secret reads the same tokens.

    Examples
    --------
    >>> signer = PixelSigner("s" * 32)
    >>> token = signer.token("a" * 32, "b" * 32)
    >>> signer.read(token) == ("a" * 32, "b" * 32), signer.read(token[:-2] + "AA")
    (True, None)
    """

    def __init__(self, secret: str) -> None:
        self._key = secret.encode("utf-8")

    def _mac(self, ids: bytes) -> bytes:
        return hmac.new(self._key, ids, hashlib.sha256).digest()[:16]

    def token(self, experiment_id: str, decision_id: str) -> str:
        """The token of one decision (ids are 32 hex characters, as the store makes them)."""
        ids = bytes.fromhex(experiment_id + decision_id)
        return base64.urlsafe_b64encode(ids + self._mac(ids)).decode("ascii").rstrip("=")

    def read(self, token: str) -> tuple[str, str] | None:
        """The (experiment id, decision id) a token names, or None for a token not ours."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != 48 or not hmac.compare_digest(raw[32:], self._mac(raw[:32])):
            return None
        return raw[:16].hex(), raw[16:32].hex()
