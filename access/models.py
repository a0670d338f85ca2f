"""Just-in-time access: requests, the decisions of their approvers, the tickets of manual fulfilment.

A request points down at the inventory (its integration, role, account and the permissions written
for it); the inventory never points up here. Approval workflows stay in the inventory
(``integrations.models.ApprovalWorkflow``): integrations, resources and roles name theirs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.durations import Duration
from integrations.models import Account, ApprovalWorkflow, Integration, Permission, Role


class AccessRequest(models.Model):
    """Someone asks for a role for a while; approvers decide; the portal grants and later revokes it.

    ``steps`` snapshots, when the request is filed, the matched rule's steps with the users who
    may approve each approver entry, so the request's history stays readable whatever later
    happens to the workflow: ``[{"mode", "approvers": [{"kind", "label", "automatic", "users"}]}]``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved, being granted"
        FAILED = "failed", "Grant failed, retrying"
        GRANTED = "granted", "Granted"
        DENIED = "denied", "Denied"
        CANCELLED = "cancelled", "Cancelled"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"
        EXTENDED = "extended", "Extended by a later request"

    OPEN = ("pending", "approved", "failed", "granted")
    LIVE = ("approved", "failed", "granted")

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    beneficiary = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests_for"
    )
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="access_requests")
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="access_requests")
    prerequisite_roles = models.ManyToManyField(
        Role,
        blank=True,
        related_name="prerequisite_for_requests",
        help_text="Prerequisites the beneficiary lacked: granted first, ended with the request.",
    )
    duration = models.CharField(max_length=10, choices=Duration.choices)
    justification = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    workflow = models.ForeignKey(
        ApprovalWorkflow, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    rule_position = models.PositiveSmallIntegerField(null=True, blank=True)
    steps = models.JSONField(default=list, blank=True)
    current_step = models.PositiveSmallIntegerField(default=0, help_text="Index into steps.")
    pending_approvers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="approvals_waiting",
        help_text="Who may decide the current step now.",
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="access_requests"
    )
    created_account = models.BooleanField(
        default=False, help_text="The account was created for this request."
    )
    error = models.TextField(blank=True, help_text="The last grant or revoke error.")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.JSONField(default=list, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who ended the access before it expired.",
    )
    permissions = models.ManyToManyField(
        Permission,
        through="RequestPermission",
        blank=True,
        related_name="access_requests",
        help_text="The permissions written for the request (its role and prerequisites): ended with it.",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "integrations_accessrequest"  # the table kept its name when the model moved here
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["beneficiary", "status"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.role} for {self.beneficiary.username}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def duration_label(self) -> str:
        return Duration(self.duration).label


class AccessDecision(models.Model):
    """An approver approved or denied a step of a request."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="decisions")
    step = models.PositiveSmallIntegerField(help_text="Index into the request's steps.")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    approved = models.BooleanField()
    automatic = models.BooleanField(default=False)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "integrations_accessdecision"  # the table kept its name when the model moved here
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "step", "approver"],
                condition=Q(approver__isnull=False),
                name="uniq_decision_per_step",
            )
        ]

    def __str__(self) -> str:
        verb = "approved" if self.approved else "denied"
        return f"{self.approver or 'automatic'} {verb} step {self.step + 1} of #{self.request_id}"


class AccessTicket(models.Model):
    """Manual fulfilment: grant or revoke a request's access by hand in an application the portal may not change."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant access"
        REVOKE = "revoke", "Revoke access"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="tickets")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    reason = models.CharField(max_length=300)
    note = models.TextField(blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "integrations_accessticket"  # the table kept its name when the model moved here
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "kind"], condition=Q(status="open"), name="uniq_open_ticket"
            )
        ]

    def __str__(self) -> str:
        return f"Ticket #{self.pk}: {self.get_kind_display().lower()} for request #{self.request_id}"


class RequestPermission(models.Model):
    """A permission written for an access request (its role or one of its prerequisites), ended with it.

    A permission belongs to at most one request: when a later request takes over a grant, the link
    moves to it."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="+")
    # Permissions are written by the sync without foreign-key constraints (see Permission): this link
    # goes away with its permission through the ORM and through an integration's deletion.
    permission = models.OneToOneField(
        Permission, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )

    class Meta:
        verbose_name = "link of a permission to its request"
        verbose_name_plural = "links of permissions to their requests"

    def __str__(self) -> str:
        return f"permission {self.permission_id} of request #{self.request_id}"
