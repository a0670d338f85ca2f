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

from .validators import validate_attributes, validate_identity_source, validate_person


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


class IdentitySource(models.Model):
    """An integration whose accounts make and update people (an HR export, a directory).

    ``mapping`` names, for each person field, the account attribute that gives it; the key field
    (``employee_id``, else ``username``) matches an account to its person. When several sources feed one
    person, each field takes the value of the enabled source with the lowest ``position`` that gives one.
    A run that would terminate more than ``leaver_limit_percent`` of the source's active people is held
    (``pending_since``, ``pending_summary``) until an admin confirms or discards it.
    """

    class ManagerKey(models.TextChoices):
        EMPLOYEE_ID = "employee_id", "Employee id"
        EMAIL = "email", "Email"
        USERNAME = "username", "Username"
        ACCOUNT = "account", "The manager's own account (its external id, e.g. an LDAP DN)"

    integration = models.OneToOneField(Integration, on_delete=models.CASCADE, related_name="identity_source")
    position = models.PositiveIntegerField(
        default=100, help_text="Precedence: for each field, the source with the lowest position wins."
    )
    mapping = models.JSONField(
        default=dict, blank=True, help_text="Person field → account attribute, as a JSON object."
    )
    manager_key = models.CharField(
        max_length=16,
        choices=ManagerKey.choices,
        default=ManagerKey.EMPLOYEE_ID,
        help_text="Which of the manager's identifiers the manager attribute holds.",
    )
    status_values = models.JSONField(
        default=dict,
        blank=True,
        help_text='The application\'s values meaning leave or terminated, e.g. {"terminated": ["T"], '
        '"leave": ["L"]}; any other value is active.',
    )
    leaver_limit_percent = models.PositiveSmallIntegerField(
        default=10,
        help_text="A run that would terminate more than this share of the source's active people waits "
        "for an admin.",
    )
    enabled = models.BooleanField(default=True)
    last_applied_at = models.DateTimeField(null=True, blank=True)
    last_summary = models.JSONField(default=dict, blank=True)
    pending_since = models.DateTimeField(null=True, blank=True)
    pending_summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "integration__name"]

    def __str__(self) -> str:
        return f"Identity source {self.integration}"

    @property
    def key_field(self) -> str | None:
        return next((f for f in ("employee_id", "username") if self.mapping.get(f)), None)

    def clean(self) -> None:
        validate_identity_source(self)
