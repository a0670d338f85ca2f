"""Small filters of the screens: job status badges, count labels, durations, JSON shown as text."""

import json

from django import template

from ..durations import label
from ..screens.tables import STATUS_BADGES

register = template.Library()

COUNT_LABELS = {
    "read": "Read",
    "resources_created": "Resources created",
    "roles_created": "Roles created",
    "accounts_created": "Accounts created",
    "permissions_created": "Permissions created",
    "permissions_ended": "Permissions ended",
    "resources_removed": "Resources removed",
    "roles_removed": "Roles removed",
    "accounts_removed": "Accounts removed",
    "filtered": "Filtered out",
    "selected": "Selected",
    "changed": "Changed",
}


@register.filter
def job_badge(status: str) -> str:
    return STATUS_BADGES.get(status, "bg-secondary-lt")


@register.filter
def counts_items(counts: dict) -> list[tuple[str, object]]:
    return [(COUNT_LABELS.get(k, k.replace("_", " ").capitalize()), v) for k, v in (counts or {}).items()]


@register.filter
def duration_labels(keys) -> str:
    return ", ".join(label(k) for k in keys or [])


@register.filter
def thousands(value) -> str:
    """1545 → "1,545" (like the tables' counts)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return value


@register.filter
def timedelta_minutes(value) -> int:
    """A timedelta (a lockout's length) in whole minutes, at least 1."""
    try:
        return max(1, round(value.total_seconds() / 60))
    except AttributeError:
        return value


PRETTY_JSON_LIMIT = 20_000  # characters shown of a connector's attributes (up to 256 KiB each)


@register.filter
def pretty_json(value) -> str:
    """Indented JSON text (escaped by the template), cut at :data:`PRETTY_JSON_LIMIT` characters."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= PRETTY_JSON_LIMIT else text[:PRETTY_JSON_LIMIT] + "\n…"
