"""Authentication, permission and throttling classes of the REST API (settings point here; paging is in
:mod:`governance.paging`).

Kept apart from :mod:`governance.api` because DRF imports them while ``rest_framework.views``
loads: this module must import nothing that imports the views.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache as default_cache
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.authentication import SessionAuthentication as _SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from .models import ApiToken
from .tokens import InvalidToken, api_token_authenticate

log = logging.getLogger(__name__)

# What a cache that cannot be reached raises (Django's Redis backend: redis-py's errors; sockets: OSError).
CACHE_ERRORS = (RedisError, OSError)
_CACHE_WARNING_EVERY = 60.0  # seconds: one warning a minute per process, not one per request
_last_cache_warning: dict[str, float] = {}


def cache_unavailable(what: str, exc: Exception) -> None:
    """Log (once a minute per ``what``) that the cache is down and ``what`` is skipped: the API fails open."""
    now = time.monotonic()
    if what not in _last_cache_warning or now - _last_cache_warning[what] >= _CACHE_WARNING_EVERY:
        _last_cache_warning[what] = now
        log.warning("The cache (CACHE_URL) is unavailable, %s is skipped until it is back: %s", what, exc)


def client_address(request) -> str:
    """The client's address: the connection's, or X-Forwarded-For's as far as ``NUM_PROXIES`` trusts it.

    One rule for the API's per-address limits and the sign-in lockouts (``AXES_CLIENT_IP_CALLABLE``).
    """
    return BaseThrottle().get_ident(request)


def window_count(key: str, duration: int, *, cache=default_cache) -> tuple[int, float]:
    """Count one more event under ``key`` in the current fixed window of ``duration`` seconds.

    Returns the event's number in the window and the seconds until the window ends. One atomic
    step in the cache (``add`` then ``incr``), so processes sharing a cache share exact counts.
    Raises one of :data:`CACHE_ERRORS` when the cache cannot be reached.
    """
    now = time.time()
    window = int(now // duration)
    key = f"{key}:{duration}:{window}"
    wait = (window + 1) * duration - now
    timeout = duration + 5  # the key outlives its window a little, then goes
    if cache.add(key, 1, timeout):
        return 1, wait
    try:
        return cache.incr(key), wait
    except ValueError:  # expired between add and incr: a new window's first event
        cache.add(key, 1, timeout)
        return 1, wait


def window_peek(key: str, duration: int, *, cache=default_cache) -> tuple[int, float]:
    """The current window's count under ``key`` (as :func:`window_count` keeps it) without adding one."""
    now = time.time()
    window = int(now // duration)
    return cache.get(f"{key}:{duration}:{window}", 0), (window + 1) * duration - now


# -- authentication ---------------------------------------------------------------------------------------


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer gov_<prefix>_<secret>``: a personal API token.

    Failed token authentications are counted per client address (rate ``token_failure`` in
    ``DEFAULT_THROTTLE_RATES``, fixed windows in the cache). Once an address has spent its
    budget, every bearer request from it answers 429 with ``Retry-After`` until the window ends,
    a valid token included: whoever is guessing learns nothing more from that address. When the
    cache cannot be reached, tokens are checked without counting (a warning is logged).
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()  # a header of only whitespace (e.g. "\xa0") has no parts: malformed
        if parts and parts[0].lower() != self.keyword.lower():
            return None  # another scheme: not ours to judge
        rate = api_settings.DEFAULT_THROTTLE_RATES.get("token_failure")
        limit, duration = ApiRateThrottle().parse_rate(rate) if rate else (None, None)
        key = f"token_failure_{client_address(request)}"
        if limit is not None:
            try:
                failures, wait = window_peek(key, duration)
            except CACHE_ERRORS as exc:
                cache_unavailable("counting failed API tokens", exc)
                failures, wait = 0, None
            if failures >= limit:
                raise exceptions.Throttled(
                    wait, detail="Too many failed API token attempts from this address. Try again later."
                )
        try:
            if len(parts) != 2:
                raise InvalidToken("Send the token as 'Authorization: Bearer <token>'.")
            token = api_token_authenticate(parts[1])
        except InvalidToken as exc:
            if limit is not None:
                try:
                    failures, wait = window_count(key, duration)
                except CACHE_ERRORS as cache_exc:
                    cache_unavailable("counting failed API tokens", cache_exc)
                    failures = 0
                if failures > limit:  # guesses sent in parallel past the peek learn nothing more
                    raise exceptions.Throttled(
                        wait, detail="Too many failed API token attempts from this address. Try again later."
                    ) from None
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return token.user, token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class SessionAuthentication(_SessionAuthentication):
    """The browser's session (CSRF-checked on writes, as DRF does)."""


# -- permissions ------------------------------------------------------------------------------------------


class IsAuthenticatedUser(IsAuthenticated):
    """Signed in or a valid token (401 otherwise)."""


# -- throttling -------------------------------------------------------------------------------------------


class ApiRateThrottle(SimpleRateThrottle):
    """One budget per API token, per signed-in session user, or per anonymous client address.

    Rates are read per request from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` under the
    scopes ``token``, ``user`` and ``anon``, so they can be changed without a restart of the
    class (tests shrink them).

    Counted in fixed windows (``1200/min``: at most 1200 requests per calendar minute) with
    the cache's atomic ``add`` and ``incr``, so web processes sharing one cache (``CACHE_URL``
    pointing at Redis) share one exact budget, however concurrent their requests: DRF's default
    history list is read, changed and written back, and concurrent requests would overwrite
    each other's counts. A refused request answers 429 with ``Retry-After``: the seconds until
    the window ends.

    When the cache cannot be reached (Redis down or paused), requests are let through and a
    warning is logged: an outage of the counters must not take the API down with it.
    """

    def __init__(self):  # the rate depends on the request: resolved in allow_request
        self.rate = None
        self._wait = None

    def _scope_and_ident(self, request) -> tuple[str, str]:
        if isinstance(request.auth, ApiToken):
            return "token", str(request.auth.pk)
        if request.user and request.user.is_authenticated:
            return "user", str(request.user.pk)
        return "anon", self.get_ident(request)

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        self.scope, self._ident = self._scope_and_ident(request)
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            count, self._wait = window_count(
                self.get_cache_key(request, view), self.duration, cache=self.cache
            )
        except CACHE_ERRORS as exc:
            cache_unavailable("rate limiting", exc)
            return True
        return count <= self.num_requests

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self._ident}

    def wait(self):
        return self._wait
