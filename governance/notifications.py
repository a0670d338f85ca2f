"""Notifications: one small pluggable layer.

``notify()`` sends a message to people (email through Django's email backend) and to
incoming webhooks (Slack-compatible JSON ``{"text": ...}``): the global
``NOTIFICATION_WEBHOOK_URL`` and any extra URLs the caller passes (an integration's own).
More channels plug in with :func:`register_channel`. A channel that fails is logged and
does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.core.mail import send_mail

from .netguard import ForbiddenTarget, check_url

log = logging.getLogger(__name__)


@dataclass
class Notification:
    subject: str
    text: str
    recipients: list = field(default_factory=list)  # users
    webhooks: list[str] = field(default_factory=list)
    link: str = ""


Channel = Callable[[Notification], None]
_channels: list[Channel] = []


def register_channel(channel: Channel) -> Channel:
    _channels.append(channel)
    return channel


@register_channel
def email_channel(n: Notification) -> None:
    addresses = sorted({u.email for u in n.recipients if getattr(u, "email", "")})
    if addresses:
        body = n.text + (f"\n\n{n.link}" if n.link else "")
        send_mail(n.subject, body, settings.DEFAULT_FROM_EMAIL, addresses)


@register_channel
def webhook_channel(n: Notification) -> None:
    urls = [u for u in dict.fromkeys([getattr(settings, "NOTIFICATION_WEBHOOK_URL", ""), *n.webhooks]) if u]
    for url in urls:
        try:
            check_url(url)  # again at sending: a name may point elsewhere since it was saved
        except ForbiddenTarget as exc:
            log.warning("webhook not sent: %s", exc)
            continue
        text = f"*{n.subject}*\n{n.text}" + (f"\n<{n.link}>" if n.link else "")
        response = httpx.post(url, json={"text": text}, timeout=10)
        response.raise_for_status()


def notify(
    *, subject: str, text: str, recipients: Iterable = (), webhooks: Iterable[str] = (), link: str = ""
) -> None:
    n = Notification(
        subject=subject,
        text=text,
        recipients=list(recipients),
        webhooks=[w for w in webhooks if w],
        link=link,
    )
    for channel in _channels:
        try:
            channel(n)
        except Exception:  # one broken channel must not silence the others
            log.exception(
                "notification channel %s failed for %r", getattr(channel, "__name__", channel), subject
            )


def admins():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(is_active=True, is_superuser=True)
