"""Personal API tokens: create, revoke, authenticate.

A token reads ``gov_<prefix>_<secret>``: the prefix is a visible id (shown in lists so a
user can tell tokens apart), the secret 32 random bytes. Only the prefix and the SHA-256 of
the whole token are stored, so a database leak yields no usable token; the token is shown
once, when it is created.

Every token expires: at most ``API_TOKEN_MAX_DAYS`` (default 365) after it is created, which is
also the expiry of a token created without one (tokens stored without an expiry by an earlier
version expire that long after their creation). Tokens cannot create tokens: the API refuses a
token-authenticated creation (``governance.api``), so a short-lived or leaked token cannot mint
a longer-lived one; a signed-in session creates them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from . import audit
from .models import ApiToken

TOKEN_PREFIX = "gov_"
# How often a token's last-used time is written (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def max_lifetime() -> timedelta:
    """The longest lifetime of a token (``API_TOKEN_MAX_DAYS``)."""
    return timedelta(days=settings.API_TOKEN_MAX_DAYS)


def api_token_create(
    *, actor, name: str, expires_at: datetime | None = None, user=None
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` (default: the actor). Returns the token row and the token, once.

    No expiry: the longest allowed (:func:`max_lifetime`); a later one is refused.
    """
    user = user or actor
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the token (what it is for)."})
    now = timezone.now()
    if expires_at is None:
        expires_at = now + max_lifetime()
    elif expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    elif expires_at > now + max_lifetime():
        raise ValidationError(
            {
                "expires_at": f"A token lives at most {settings.API_TOKEN_MAX_DAYS} days: choose an earlier expiry."
            }
        )
    prefix = secrets.token_hex(4)
    while ApiToken.objects.filter(prefix=prefix).exists():  # 4 bytes: collisions are rare, not impossible
        prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken(user=user, name=name[:100], prefix=prefix, token_hash=_hash(token), expires_at=expires_at)
    row.full_clean()
    with audit.audit_context(actor=actor), transaction.atomic():
        row.save()
    return row, token


def api_token_revoke(*, actor, token: ApiToken) -> ApiToken:
    """Revoke a token: it stops working at once. Revoking twice changes nothing."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        with audit.audit_context(actor=actor), transaction.atomic():
            token.save(update_fields=["revoked_at"])
    return token


class InvalidToken(Exception):
    """The token is malformed, unknown, revoked or expired (the message says which)."""


def api_token_authenticate(raw: str) -> ApiToken:
    """The active token matching ``raw``; :class:`InvalidToken` otherwise."""
    if not raw.startswith(TOKEN_PREFIX) or raw.count("_") < 2:
        raise InvalidToken("Malformed API token.")
    prefix = raw[len(TOKEN_PREFIX) :].split("_", 1)[0]
    row = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if row is None or not hmac.compare_digest(row.token_hash, _hash(raw)):
        raise InvalidToken("Unknown API token.")
    if row.revoked_at is not None:
        raise InvalidToken("This API token was revoked.")
    now = timezone.now()
    expires_at = row.expires_at or row.created_at + max_lifetime()
    if expires_at <= now:
        raise InvalidToken("This API token has expired.")
    if not row.user.is_active:
        raise InvalidToken("The token's user is inactive.")
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        # A plain UPDATE: bookkeeping, not an audited change.
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row
