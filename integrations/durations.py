"""Access durations: the list an admin picks allowed durations from."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models


class Duration(models.TextChoices):
    """Entitle's durations, shortest first. Stored by key in ``allowed_durations`` lists."""

    MIN_30 = "30m", "30 minutes"
    HOUR_1 = "1h", "1 hour"
    HOUR_3 = "3h", "3 hours"
    HOUR_6 = "6h", "6 hours"
    HOUR_12 = "12h", "12 hours"
    HOUR_16 = "16h", "16 hours"
    DAY_1 = "1d", "1 day"
    DAY_3 = "3d", "3 days"
    WEEK_1 = "1w", "1 week"
    MONTH_1 = "1mo", "1 month"
    MONTH_3 = "3mo", "3 months"
    MONTH_6 = "6mo", "6 months"
    YEAR_1 = "1y", "1 year"
    YEAR_2 = "2y", "2 years"
    UNLIMITED = "unlimited", "Unlimited"


ALL_DURATIONS: list[str] = [d.value for d in Duration]
_ORDER = {key: i for i, key in enumerate(ALL_DURATIONS)}
_DELTAS = {
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "3h": timedelta(hours=3),
    "6h": timedelta(hours=6),
    "12h": timedelta(hours=12),
    "16h": timedelta(hours=16),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
    "1w": timedelta(weeks=1),
}
_MONTHS = {"1mo": 1, "3mo": 3, "6mo": 6, "1y": 12, "2y": 24}


def normalize_durations(value) -> list[str]:
    """Validate a list of duration keys; return it deduplicated in canonical order."""
    if not isinstance(value, (list, tuple)):
        raise ValidationError("Allowed durations must be a list of duration keys.")
    unknown = [v for v in value if not isinstance(v, str) or v not in _ORDER]
    if unknown:
        raise ValidationError(
            "Unknown duration %(unknown)s; choose from %(known)s.",
            params={"unknown": ", ".join(map(str, unknown)), "known": ", ".join(ALL_DURATIONS)},
        )
    return sorted(set(value), key=_ORDER.__getitem__)


def validate_durations(value) -> None:
    normalize_durations(value)


def expires_at(start: datetime, key: str) -> datetime | None:
    """When access granted at ``start`` for ``key`` ends; None for unlimited."""
    if key == Duration.UNLIMITED:
        return None
    if key in _DELTAS:
        return start + _DELTAS[key]
    months = _MONTHS[key]
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    month += 1
    # Clamp to the month's last day (31 Jan + 1 month = 28/29 Feb).
    for day in (start.day, 30, 29, 28):
        try:
            return start.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def duration_order(key: str) -> int:
    """The rank of a duration key, shortest first (unlimited is the longest)."""
    return _ORDER[key]


def label(key: str) -> str:
    return Duration(key).label
