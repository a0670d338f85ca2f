"""Platform models: users, the append-only audit log, jobs."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    """A person who signs in: admin, owner, maintainer, approver or requester."""

    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    department = models.CharField(max_length=120, blank=True)
    title = models.CharField(max_length=120, blank=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["username"]

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("audit events are append-only")

    def delete(self):
        raise PermissionError("audit events are append-only")


class AuditEvent(models.Model):
    """One thing that happened, who did it, to what, with what before and after.

    Append-only: the model refuses updates and deletes, and on PostgreSQL a trigger
    refuses them in the database too.
    """

    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    # No database constraint: an audit row outlives the user it names (actor_repr keeps the name).
    actor = models.ForeignKey(
        "governance.User",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_repr = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(max_length=300, blank=True)
    integration_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        who = self.actor_repr or "system"
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")


class Job(models.Model):
    """A long-running operation (a sync, a bulk action) with live progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        SKIPPED = "skipped", "Skipped"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=40, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    phase = models.CharField(max_length=80, blank=True)
    subject_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subject_id = models.CharField(max_length=64, blank=True)
    integration_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    log = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        "governance.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set once the job's message was handed to the broker (or the in-process runner): a queued job
    # without one after JOB_HEARTBEAT_LIMIT was never sent, and is failed.
    task_id = models.CharField(max_length=64, blank=True)
    # Written every few seconds by the process running the job (see governance/jobs.py): a running
    # job whose heartbeat is older than JOB_HEARTBEAT_LIMIT has lost its worker, and is failed.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One queued or running job of a kind per integration, enforced by the database.
            models.UniqueConstraint(
                fields=["kind", "integration_id"],
                condition=models.Q(status__in=["queued", "running"], integration_id__isnull=False),
                name="one_active_job_per_integration",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def is_finished(self) -> bool:
        return self.status in {
            self.Status.SUCCEEDED,
            self.Status.FAILED,
            self.Status.CANCELLED,
            self.Status.SKIPPED,
        }


class ApiToken(models.Model):
    """A personal API token: ``gov_<prefix>_<secret>``, sent as ``Authorization: Bearer <token>``.

    Only the prefix (a visible id) and the SHA-256 of the whole token are stored; the token
    itself is shown once, when it is created. A token acts as its user, until it expires or
    is revoked.
    """

    user = models.ForeignKey("governance.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: expires API_TOKEN_MAX_DAYS after it was created."
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} (gov_{self.prefix}…)"

    @property
    def is_active(self) -> bool:
        # No expiry (stored by an earlier version): the longest lifetime from its creation.
        expires_at = self.expires_at or self.created_at + timedelta(days=settings.API_TOKEN_MAX_DAYS)
        return self.revoked_at is None and expires_at > timezone.now()
