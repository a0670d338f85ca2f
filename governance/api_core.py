"""Authentication, permission and throttling classes of the REST API (settings point here; paging is in
:mod:`governance.paging`).

Kept apart from :mod:`governance.api` because DRF imports them while ``rest_framework.views``
loads: this module must import nothing that imports the views.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.authentication import SessionAuthentication as _SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken
from .tokens import InvalidToken, api_token_authenticate

# -- authentication ---------------------------------------------------------------------------------------


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer gov_<prefix>_<secret>``: a personal API token."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()  # a header of only whitespace (e.g. "\xa0") has no parts: malformed
        if parts and parts[0].lower() != self.keyword.lower():
            return None  # another scheme: not ours to judge
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the token as 'Authorization: Bearer <token>'.")
        try:
            token = api_token_authenticate(parts[1])
        except InvalidToken as exc:
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
        now = self.timer()
        window = int(now // self.duration)
        self.key = f"{self.get_cache_key(request, view)}:{self.duration}:{window}"
        self._wait = (window + 1) * self.duration - now
        return self._count(self.key) <= self.num_requests

    def _count(self, key: str) -> int:
        """This request's number in the window: one atomic step in the cache."""
        timeout = self.duration + 5  # the key outlives its window a little, then goes
        if self.cache.add(key, 1, timeout):
            return 1
        try:
            return self.cache.incr(key)
        except ValueError:  # expired between add and incr: a new window's first request
            self.cache.add(key, 1, timeout)
            return 1

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self._ident}

    def wait(self):
        return self._wait
