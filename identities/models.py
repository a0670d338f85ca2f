"""A person: the HR attributes of a portal user.

The user (``governance.models.User``) stays the single truth for what the sign-in and the approval
workflows read — username, email, first and last name, manager, department, title — and the person adds
what HR knows besides. Every user is a person: the data migration made one for each user there was, the
people services create both together, and a user made anywhere else (the Django admin, the demo, a test)
gets one as it is saved (``IdentitiesConfig.ready``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.models import Integration

from .validators import validate_attributes, validate_person


class Person(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        LEAVE = "leave", "On leave"
        TERMINATED = "terminated", "Terminated"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, related_name="person", on_delete=models.CASCADE
    )
    employee_id = models.CharField(
        max_length=64, blank=True, help_text="The HR system's id of the person; unique when set."
    )
    display_name = models.CharField(
        max_length=200, blank=True, help_text="How the person is shown; empty: their first and last name."
    )
    location = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    attributes = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_attributes],
        help_text="Other attributes of the person, as a JSON object (what an identity source reports).",
    )
    source = models.ForeignKey(
        Integration,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The identity source that last fed the person; empty: kept in the portal.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user__username"]
        verbose_name_plural = "people"
        constraints = [
            models.UniqueConstraint(
                fields=["employee_id"], condition=~Q(employee_id=""), name="uniq_person_employee_id"
            ),
        ]

    def __str__(self) -> str:
        return str(self.user)

    @property
    def name(self) -> str:
        """The display name, else the first and last name, else the username."""
        return self.display_name or self.user.get_full_name() or self.user.get_username()

    def clean(self) -> None:
        validate_person(self)
