"""The inventory (integrations, resources, roles, accounts, permissions) and its policy."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connections, models
from django.db.models import Q
from django.utils import timezone

from governance.fields import EncryptedJSONField

from .durations import ALL_DURATIONS, Duration, duration_order, normalize_durations, validate_durations


def _all_durations() -> list[str]:
    return list(ALL_DURATIONS)


class DurationsMixin(models.Model):
    """A level (integration, resource, role) that may override the allowed durations."""

    override_allowed_durations = models.BooleanField(
        default=False, help_text="Use the durations chosen here instead of inheriting them."
    )
    allowed_durations = models.JSONField(
        default=_all_durations,
        blank=True,
        validators=[validate_durations],
        help_text="Durations a requester may choose when this level overrides them.",
    )

    class Meta:
        abstract = True

    def clean_durations(self) -> None:
        try:
            self.allowed_durations = normalize_durations(self.allowed_durations)
        except ValidationError as exc:
            raise ValidationError({"allowed_durations": exc.messages}) from None
        if self.override_allowed_durations and not self.allowed_durations:
            raise ValidationError({"allowed_durations": "Choose at least one duration when overriding."})


class InventoryMixin(models.Model):
    """An object discovered in an application by a sync."""

    external_id = models.CharField(max_length=512, help_text="The object's key in the application.")
    attributes = models.JSONField(default=dict, blank=True, help_text="Raw attributes from the connector.")
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a sync no longer found it in the application."
    )

    class Meta:
        abstract = True


class Agent(models.Model):
    """A worker inside a customer network that runs connector work for integrations saved on it."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return f"agent.{self.name}"


class ApprovalWorkflow(models.Model):
    """Who must approve a request, step by step."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApprovalRule(models.Model):
    """One rule of a workflow: when its conditions match a request, its steps decide it.

    Rules are tried in ``position`` order and the first that matches wins. A rule without
    conditions matches every request (a catch-all).
    """

    workflow = models.ForeignKey(ApprovalWorkflow, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField(default=1)
    max_duration = models.CharField(
        max_length=10,
        choices=Duration.choices,
        blank=True,
        help_text="Matches requests for at most this duration; empty: any duration.",
    )
    requester_groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="approval_rules",
        help_text="Matches requesters in any of these groups; none: every requester.",
    )

    class Meta:
        ordering = ["workflow", "position"]
        constraints = [models.UniqueConstraint(fields=["workflow", "position"], name="uniq_rule_position")]

    def __str__(self) -> str:
        return f"{self.workflow} · rule {self.position}"

    def describe(self) -> str:
        parts = []
        if self.max_duration:
            parts.append(f"duration at most {Duration(self.max_duration).label}")
        groups = [g.name for g in self.requester_groups.all()]
        if groups:
            parts.append("requester in " + ", ".join(groups))
        return " and ".join(parts) or "every request"

    def matches(self, duration: str, group_ids: set[int]) -> bool:
        if self.max_duration and duration_order(duration) > duration_order(self.max_duration):
            return False
        wanted = {g.pk for g in self.requester_groups.all()}
        return not wanted or bool(wanted & group_ids)


class ApprovalStep(models.Model):
    """One step of a rule: ``any`` or ``all`` of its approvers must approve."""

    class Mode(models.TextChoices):
        ANY = "any", "Any one approver"
        ALL = "all", "All approvers"

    # Denormalised from the rule, so a workflow lists its steps directly.
    workflow = models.ForeignKey(ApprovalWorkflow, on_delete=models.CASCADE, related_name="steps")
    rule = models.ForeignKey(ApprovalRule, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=1)
    mode = models.CharField(max_length=3, choices=Mode.choices, default=Mode.ANY)

    class Meta:
        ordering = ["workflow", "rule__position", "position"]
        constraints = [models.UniqueConstraint(fields=["rule", "position"], name="uniq_rule_step_position")]

    def __str__(self) -> str:
        return f"{self.workflow} · step {self.position} ({self.mode})"

    def save(self, *args, **kwargs):
        if self.rule_id is None and self.workflow_id is not None:
            # A step given only its workflow joins the workflow's first rule (made a catch-all if none).
            self.rule = self.workflow.rules.order_by("position").first() or ApprovalRule.objects.create(
                workflow_id=self.workflow_id, position=1
            )
        if self.rule_id is not None:
            self.workflow_id = self.rule.workflow_id
        super().save(*args, **kwargs)


class Approver(models.Model):
    class Kind(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic approval"
        USER = "user", "A user"
        GROUP = "group", "A group"
        OWNER = "owner", "Owner of the integration/resource"
        MAINTAINERS = "maintainers", "Maintainers"
        MANAGER = "manager", "Requester's manager"

    step = models.ForeignKey(ApprovalStep, on_delete=models.CASCADE, related_name="approvers")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="approver_principal_matches_kind",
                condition=(Q(kind="user", user__isnull=False, group__isnull=True))
                | (Q(kind="group", group__isnull=False, user__isnull=True))
                | (
                    Q(
                        kind__in=["automatic", "owner", "maintainers", "manager"],
                        user__isnull=True,
                        group__isnull=True,
                    )
                ),
            )
        ]

    def __str__(self) -> str:
        who = self.user or self.group
        return f"{self.get_kind_display()}{f': {who}' if who else ''}"

    def clean(self) -> None:
        if self.kind == self.Kind.USER and not self.user_id:
            raise ValidationError({"user": "Choose the approving user."})
        if self.kind == self.Kind.GROUP and not self.group_id:
            raise ValidationError({"group": "Choose the approving group."})
        if self.kind not in (self.Kind.USER, self.Kind.GROUP) and (self.user_id or self.group_id):
            raise ValidationError("Only user and group approvers name a user or group.")


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IntegrationQuerySet(models.QuerySet):
    def delete(self):
        """Delete each integration the way ``Integration.delete`` does; returns Django's (total, counts)."""
        total, counts = 0, {}
        for integration in self:
            n, each = integration.delete()
            total += n
            for label, k in each.items():
                counts[label] = counts.get(label, 0) + k
        return total, counts


class IntegrationManager(models.Manager.from_queryset(IntegrationQuerySet)):
    def hold(self, pk: int) -> bool:
        """Keep the integration from being deleted until the current transaction ends; False if it is gone.

        The inventory's references to their integration, resource, role and request have no
        foreign-key constraints in the database: a sync writes a million rows at a time, and
        checking them row by row cost more than a quarter of a sync. Writers of inventory rows
        take this lock instead, once (what each of those checks did), and deleting an integration
        waits for them, so it cascades to everything they wrote.

        An integration being deleted (``deletion_started_at`` set, see ``integration_delete``) is
        held by no one: its deletion runs in batches, and nothing may write into it meanwhile.
        """
        connection = connections[self.db]
        if connection.vendor != "postgresql":  # SQLite: one writer at a time
            return self.filter(pk=pk, deletion_started_at=None).exists()
        with connection.cursor() as c:
            c.execute(
                f"SELECT 1 FROM {self.model._meta.db_table} WHERE id = %s AND deletion_started_at IS NULL "
                "FOR KEY SHARE",
                [pk],
            )
            return c.fetchone() is not None


# Sync intervals are bounded: a scheduled sync at most every 5 minutes, at least every 90 days.
SYNC_INTERVAL_MIN = timedelta(minutes=5)
SYNC_INTERVAL_MAX = timedelta(days=90)
SYNC_INTERVAL_VALIDATORS = [
    MinValueValidator(SYNC_INTERVAL_MIN, "A sync interval is at least 5 minutes."),
    MaxValueValidator(SYNC_INTERVAL_MAX, "A sync interval is at most 90 days."),
]


class Integration(DurationsMixin):
    """A connected application: its connection, its policy defaults and its sync status."""

    objects = IntegrationManager()

    class SyncStatus(models.TextChoices):
        NEVER = "never", "Never synced"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    application = models.CharField(
        max_length=64, help_text="The connector this integration uses, from the catalogue.", db_index=True
    )
    name = models.CharField(max_length=200, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_integrations",
    )
    default_workflow = models.ForeignKey(
        ApprovalWorkflow,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="integrations",
        help_text="Approval workflow of every resource and role that sets none.",
    )
    connection_config = models.JSONField(
        default=dict, blank=True, help_text="Connection settings; secret items are kept apart, encrypted."
    )
    connection_secrets = EncryptedJSONField(
        help_text="Secret connection items, encrypted at rest, never shown."
    )
    agent = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="integrations",
        help_text="Run connector work on this agent; empty means in the cloud.",
    )
    read_only = models.BooleanField(
        default=False, help_text="Never change the application: grants open a ticket for manual fulfilment."
    )
    allow_changing_account_permissions = models.BooleanField(
        default=True, help_text="Grant and revoke permissions of accounts in the application."
    )
    allow_creating_accounts = models.BooleanField(
        default=True, help_text="Create an account for a requester who has none (deleted when access ends)."
    )
    requestable = models.BooleanField(default=True, help_text="Users may request access to this integration.")
    requestable_by_default = models.BooleanField(
        default=True, help_text="Newly discovered resources are requestable."
    )
    auto_assign_recommended_owners = models.BooleanField(
        default=False, help_text="Make the owner the application reports for a resource its owner here."
    )
    auto_assign_recommended_maintainers = models.BooleanField(
        default=False,
        help_text="Make the maintainers the application reports for a resource its maintainers.",
    )
    notify_external_permission_changes = models.BooleanField(
        default=False,
        help_text="Alert the owner when permissions change in the application, outside the portal.",
    )
    connector_attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text='Connector attributes: "filterString", "<type>.filterString" (objects that match are '
        'excluded), "stateful" (delta syncs).',
    )
    notification_webhook_url = models.URLField(
        blank=True,
        max_length=500,
        help_text="Incoming-webhook URL (Slack-compatible) that receives this integration's notifications.",
    )
    sync_state = models.JSONField(
        default=dict, blank=True, help_text="Delta state saved per command and type."
    )
    resources_sync_interval = models.DurationField(
        default=timedelta(hours=1),
        validators=SYNC_INTERVAL_VALIDATORS,
        help_text="How often resources, roles and accounts are discovered (5 minutes to 90 days).",
    )
    permissions_sync_interval = models.DurationField(
        default=timedelta(days=1),
        validators=SYNC_INTERVAL_VALIDATORS,
        help_text="How often every permission is re-read (5 minutes to 90 days).",
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    resources_last_synced_at = models.DateTimeField(null=True, blank=True)
    permissions_last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.NEVER)
    last_sync_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deletion_started_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Being deleted (by a job) since then."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def delete(self, using=None, keep_parents=False):
        """Delete the integration and everything that refers to it, set-based in batches, once every sync or
        grant writing into it has finished (see ``integrations.cascade``); one audit event."""
        from .cascade import integration_delete

        counts = integration_delete(actor=None, integration=self)
        return sum(counts.values()), counts

    # The connector and its catalogue entry -------------------------------------------------
    @property
    def connector(self):
        from .catalogue import get_connector

        return get_connector(self.application)

    @property
    def queue(self) -> str:
        """The Celery queue of the integration's connector work: its agent's queue when it is saved on one."""
        return self.agent.queue if self.agent_id else "default"

    @property
    def icon_url(self) -> str:
        from .catalogue import icon_url

        return icon_url(self.application)

    def clean(self) -> None:
        from .catalogue import validate_integration_config

        errors: dict[str, list[str]] = {}
        try:
            self.clean_durations()
        except ValidationError as exc:
            errors.update(exc.message_dict)
        try:
            validate_integration_config(self)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, []).extend(messages)
        cleared = getattr(self, "_secrets_cleared_because", None)  # see services.connection_merge
        if cleared and "connection_config" in errors:
            names, because = cleared
            errors["connection_config"].insert(
                0,
                f"The connection now goes elsewhere ({', '.join(because)} changed), so the secrets stored "
                f"for the old one ({', '.join(names)}) are not used: give them again in the same change.",
            )
        if errors:
            raise ValidationError(errors)


class Resource(DurationsMixin, InventoryMixin):
    """Something in an application access is given to: a database, a group, a project."""

    # Indexed by the (integration, external id) key, whose leading column it is: no index of its own, so
    # the planner never prefers a scan of the whole integration to a key lookup. No constraint in the
    # database either: see IntegrationManager.hold.
    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="resources", db_index=False, db_constraint=False
    )
    name = models.CharField(max_length=512)
    kind = models.CharField(max_length=64, blank=True, help_text="The resource's type in the application.")
    description = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="resources")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_resources",
    )
    requestable = models.BooleanField(default=True)
    workflow = models.ForeignKey(
        ApprovalWorkflow,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="resources",
        help_text="Empty: the integration's default workflow.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["integration", "name"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "external_id"], name="uniq_resource_external_id")
        ]
        # Sorting the lists by name; searches use trigram indexes on PostgreSQL (migration 0008).
        indexes = [
            models.Index(fields=["integration", "name"]),
            models.Index(fields=["name", "id"], name="resource_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.clean_durations()


class Role(DurationsMixin, InventoryMixin):
    """A level of access on a resource (CONNECT, member, ReadOnlyAccess...)."""

    # Indexed by the (integration, external id) key; no constraints (see Resource.integration).
    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="roles", db_index=False, db_constraint=False
    )
    # Indexed by role_resource_name_idx (resource, name, id), whose leading column it is.
    resource = models.ForeignKey(
        Resource, on_delete=models.CASCADE, related_name="roles", db_index=False, db_constraint=False
    )
    name = models.CharField(max_length=512)
    description = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="roles")
    requestable = models.BooleanField(default=True)
    workflow = models.ForeignKey(
        ApprovalWorkflow,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="roles",
        help_text="Empty: the resource's workflow, else the integration's.",
    )
    implies = models.ManyToManyField(
        "self",
        through="RoleImplication",
        symmetrical=False,
        related_name="implied_by",
        blank=True,
        help_text="Holding this role also gives these roles.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["resource", "name"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "external_id"], name="uniq_role_external_id")
        ]
        # The roles list's default order and its sort by name; searches use trigram indexes on PostgreSQL
        # (migration 0008).
        indexes = [
            models.Index(fields=["resource", "name", "id"], name="role_resource_name_idx"),
            models.Index(fields=["name", "id"], name="role_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.resource.name} · {self.name}"

    def clean(self) -> None:
        self.clean_durations()
        if self.resource_id and self.integration_id and self.resource.integration_id != self.integration_id:
            raise ValidationError({"resource": "The resource belongs to another integration."})

    def save(self, *args, **kwargs):
        if self.resource_id and not self.integration_id:
            self.integration_id = self.resource.integration_id
        super().save(*args, **kwargs)


class RoleImplication(models.Model):
    """Holding ``role`` also gives ``implied_role`` (directly; chains are followed by the selector)."""

    # Indexed by the (role, implied role) unique constraint, whose leading column it is. Written by the
    # sync with its roles: no constraints in the database (see IntegrationManager.hold).
    role = models.ForeignKey(
        Role, on_delete=models.CASCADE, related_name="implications", db_index=False, db_constraint=False
    )
    implied_role = models.ForeignKey(
        Role, on_delete=models.CASCADE, related_name="implied_through", db_constraint=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "implied_role"], name="uniq_role_implication"),
            models.CheckConstraint(
                condition=~Q(role=models.F("implied_role")), name="role_implies_not_itself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} ⇒ {self.implied_role}"

    def clean(self) -> None:
        from .validators import implication_cycle

        if not (self.role_id and self.implied_role_id):
            return
        cycle = implication_cycle(self.role_id, self.implied_role_id)
        if cycle:
            raise ValidationError(
                {"implied_role": "This would make a cycle of implied roles: " + " ⇒ ".join(cycle)}
            )


class Maintainer(models.Model):
    """A user or group who helps the owner run an integration or resource."""

    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="maintainers"
    )
    resource = models.ForeignKey(
        Resource, null=True, blank=True, on_delete=models.CASCADE, related_name="maintainers"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="maintainer_one_scope",
                condition=Q(integration__isnull=False, resource__isnull=True)
                | Q(integration__isnull=True, resource__isnull=False),
            ),
            models.CheckConstraint(
                name="maintainer_one_principal",
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["integration", "user"],
                condition=Q(user__isnull=False),
                name="uniq_integration_user_maint",
            ),
            models.UniqueConstraint(
                fields=["integration", "group"],
                condition=Q(group__isnull=False),
                name="uniq_integration_group_maint",
            ),
            models.UniqueConstraint(
                fields=["resource", "user"], condition=Q(user__isnull=False), name="uniq_resource_user_maint"
            ),
            models.UniqueConstraint(
                fields=["resource", "group"],
                condition=Q(group__isnull=False),
                name="uniq_resource_group_maint",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.group} maintains {self.resource or self.integration}"

    @property
    def integration_id_for_audit(self) -> int | None:
        return self.integration_id or (self.resource.integration_id if self.resource_id else None)

    def clean(self) -> None:
        if bool(self.integration_id) == bool(self.resource_id):
            raise ValidationError("A maintainer is set on exactly one integration or resource.")
        if bool(self.user_id) == bool(self.group_id):
            raise ValidationError("A maintainer is exactly one user or one group.")


class PrerequisitePermission(models.Model):
    """Access to an integration, resource or role first requires one of these roles (any one)."""

    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="prerequisites"
    )
    resource = models.ForeignKey(
        Resource, null=True, blank=True, on_delete=models.CASCADE, related_name="prerequisites"
    )
    role = models.ForeignKey(
        Role, null=True, blank=True, on_delete=models.CASCADE, related_name="prerequisites"
    )
    alternatives = models.ManyToManyField(
        Role, related_name="prerequisite_of", help_text="Any one of these roles satisfies the prerequisite."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="prerequisite_one_scope",
                condition=Q(integration__isnull=False, resource__isnull=True, role__isnull=True)
                | Q(integration__isnull=True, resource__isnull=False, role__isnull=True)
                | Q(integration__isnull=True, resource__isnull=True, role__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"Prerequisite of {self.role or self.resource or self.integration}"

    @property
    def scope(self):
        return self.role or self.resource or self.integration

    def clean(self) -> None:
        if sum(bool(x) for x in (self.integration_id, self.resource_id, self.role_id)) != 1:
            raise ValidationError("A prerequisite is set on exactly one integration, resource or role.")


# Accounts present, linked to nobody and not service accounts: who holds them is not known yet.
UNCORRELATED = Q(removed_at=None, user=None, service_account=False)


class Account(InventoryMixin):
    """An account in an application, and who holds it: the portal user it is linked to, and how that link
    was made (``link_source``), or, for a service account, the person answerable for it (``owner``).

    A sync links an account by its correlation (the same email, case-insensitively) only while nobody else
    decided: it sets and clears links it made itself (``correlation``) and leaves links made for an access
    grant (``grant``) or by a person (``hand``, also "linked to nobody") alone, and service accounts too.
    An account is *uncorrelated* when it is present, linked to nobody and not a service account
    (:data:`UNCORRELATED`).
    """

    class LinkSource(models.TextChoices):
        NONE = "", "Not linked"
        CORRELATION = "correlation", "Linked by a sync (same email, or its identity source)"
        GRANT = "grant", "Linked by an access grant"
        HAND = "hand", "Set by hand"

    # The links a sync may set and clear: those nobody made, and its own.
    SYNC_MANAGED = (LinkSource.NONE, LinkSource.CORRELATION)

    # Indexed by the (integration, external id) key; no constraint (see Resource.integration).
    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="accounts", db_index=False, db_constraint=False
    )
    identity = models.CharField(max_length=512, help_text="The account's name in the application.")
    email = models.EmailField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts"
    )
    # Database defaults too: the sync's COPY of new accounts leaves these columns out.
    link_source = models.CharField(
        max_length=12,
        choices=LinkSource.choices,
        default=LinkSource.NONE,
        db_default=LinkSource.NONE,
        blank=True,
        help_text="How the account was linked to its user; a sync changes only links it made itself.",
    )
    service_account = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Held by no person: a program's account, answered for by its owner.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_accounts",
        db_index=False,  # the partial index below: syncs write a million accounts that have none
        help_text="The person answerable for a service account.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["integration", "identity"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "external_id"], name="uniq_account_external_id")
        ]
        indexes = [
            # The lists' order, the id breaking ties (screens.pages.PageRows): pages are read from the index.
            models.Index(fields=["integration", "identity", "id"], name="account_list_order_idx"),
            # The uncorrelated accounts: counted per integration, listed by name, among a million accounts.
            models.Index(
                fields=["integration", "identity", "id"],
                condition=UNCORRELATED,
                name="account_uncorrelated_idx",
            ),
            models.Index(fields=["owner"], condition=Q(owner__isnull=False), name="account_owner_idx"),
        ]

    def __str__(self) -> str:
        return self.identity


class Permission(models.Model):
    """An account holds a role: granted by the portal, found in the application, or a birthright."""

    class Source(models.TextChoices):
        PORTAL = "portal", "Granted by the portal"
        EXTERNAL = "external", "Granted outside the portal"
        BIRTHRIGHT = "birthright", "Birthright"

    # The sync writes permissions a million at a time, so this table has no foreign-key constraints in the
    # database: checking them per row costs as much as writing the rows. Integrity holds by construction:
    # the sync takes account and role ids from the same transaction, accounts and roles are never deleted
    # by it (only marked removed), deleting one through the ORM cascades to its permissions, and writers
    # hold their integration against deletion (IntegrationManager.hold).
    # ``integration`` is denormalised from the account; the (integration, ended_at) index serves it.
    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="permissions", db_constraint=False, db_index=False
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="permissions", db_constraint=False
    )
    role = models.ForeignKey(
        Role, on_delete=models.CASCADE, related_name="permissions", db_constraint=False, db_index=False
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.EXTERNAL)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When the permission was revoked or vanished."
    )
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "role"], condition=Q(ended_at__isnull=True), name="uniq_active_permission"
            )
        ]
        indexes = [
            models.Index(fields=["role", "ended_at"]),
            models.Index(fields=["integration", "ended_at"]),
            # Expiry scans read only live grants that expire.
            models.Index(
                fields=["expires_at"],
                condition=Q(expires_at__isnull=False, ended_at__isnull=True),
                name="permission_expiring_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} → {self.role}"

    def clean(self) -> None:
        if self.account_id and self.role_id and self.account.integration_id != self.role.integration_id:
            raise ValidationError("The account and the role belong to different integrations.")

    def save(self, *args, **kwargs):
        if self.account_id and not self.integration_id:
            self.integration_id = self.account.integration_id
        super().save(*args, **kwargs)


class Rule(models.Model):
    """Governance applied automatically: when a resource or role matches the conditions, set these values.

    ``conditions`` is a list of ``{"field", "op", "value"}`` (and ``"key"`` for attributes),
    combined with ``match`` (all / any). ``actions`` holds what to set: ``owner`` (user id),
    ``maintainers`` (user ids, added), ``workflow`` (workflow id), ``requestable`` (bool),
    ``tags`` (names, added) and ``allowed_durations`` (duration keys, overriding). Rules run in
    ``position`` order on newly discovered objects after each sync, and on demand on existing
    ones when their scope includes them.
    """

    class Target(models.TextChoices):
        RESOURCES = "resources", "Resources"
        ROLES = "roles", "Roles"

    class Match(models.TextChoices):
        ALL = "all", "All conditions"
        ANY = "any", "Any condition"

    class Scope(models.TextChoices):
        EXISTING_AND_NEW = "existing_and_new", "Existing and newly discovered objects"
        NEW_ONLY = "new_only", "Newly discovered objects only"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    target = models.CharField(max_length=10, choices=Target.choices, default=Target.RESOURCES)
    match = models.CharField(max_length=3, choices=Match.choices, default=Match.ALL)
    conditions = models.JSONField(default=list, blank=True)
    actions = models.JSONField(default=dict, blank=True)
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.EXISTING_AND_NEW)
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=100, help_text="Rules run in this order, lowest first.")
    last_applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .validators import validate_rule

        validate_rule(self)
