"""Load the demo organisation: an admin, people, groups, workflows and synced integrations.

The admin's password defaults to ``admin`` (``--password`` or ``DEMO_ADMIN_PASSWORD`` change
it), the demo people's ``demo`` (``--people-password``, ``DEMO_PEOPLE_PASSWORD``); with ``DEBUG``
off the command refuses to create accounts with these default passwords.

Idempotent: running it again changes nothing that is already there (use --resync to
sync the integrations again).
"""

from __future__ import annotations

import json
import os
from itertools import cycle
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from governance import audit
from governance.audit import audit_context
from integrations import services
from integrations.models import (
    ApprovalStep,
    ApprovalWorkflow,
    Approver,
    Integration,
    Maintainer,
    PrerequisitePermission,
    Resource,
    Role,
)
from integrations.sync import SyncError, sync_integration

ORGANISATION = Path(__file__).resolve().parents[2] / "demo" / "organisation.json"


def _matches(value, test: dict) -> bool:
    if value is None:
        return False
    if "equals" in test:
        return str(value) == test["equals"]
    if "contains" in test:
        return test["contains"] in str(value)
    return False


DEFAULT_ADMIN_PASSWORD = "admin"
DEFAULT_PEOPLE_PASSWORD = "demo"


class Command(BaseCommand):
    help = "Load the demo organisation (idempotent) and print the admin login."

    def add_arguments(self, parser):
        parser.add_argument("--file", default=str(ORGANISATION), help="Organisation file (JSON).")
        parser.add_argument(
            "--password",
            default=os.environ.get("DEMO_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD),
            help=f"Password of the admin when it is created (default {DEFAULT_ADMIN_PASSWORD!r}, only with DEBUG on).",
        )
        parser.add_argument(
            "--people-password",
            default=os.environ.get("DEMO_PEOPLE_PASSWORD", DEFAULT_PEOPLE_PASSWORD),
            help=f"Password of the demo people when they are created (default {DEFAULT_PEOPLE_PASSWORD!r}, only with DEBUG on).",
        )
        parser.add_argument(
            "--resync", action="store_true", help="Sync integrations that were synced before."
        )
        parser.add_argument(
            "--scale", type=float, default=1.0, help="Multiply the size of each organisation."
        )

    def handle(self, *args, file, password, people_password, resync, scale, **options):
        try:
            org = json.loads(Path(file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"cannot read the organisation file {file}: {exc}") from None
        User = get_user_model()
        if not settings.DEBUG:  # production: no account is created with a password everyone knows
            weak = []
            if (
                password == DEFAULT_ADMIN_PASSWORD
                and not User.objects.filter(username=org["admin"]["username"]).exists()
            ):
                weak.append(
                    f"the admin {org['admin']['username']!r} with the password {DEFAULT_ADMIN_PASSWORD!r} "
                    "(pass --password or set DEMO_ADMIN_PASSWORD)"
                )
            usernames = [p["username"] for p in org["people"]]
            if people_password == DEFAULT_PEOPLE_PASSWORD and User.objects.filter(
                username__in=usernames
            ).count() < len(usernames):
                weak.append(
                    f"the demo people with the password {DEFAULT_PEOPLE_PASSWORD!r} "
                    "(pass --people-password or set DEMO_PEOPLE_PASSWORD)"
                )
            if weak:
                raise CommandError(f"refusing to create {' and '.join(weak)} while DEBUG is off.")
        admin, created = User.objects.get_or_create(
            username=org["admin"]["username"],
            defaults={**org["admin"], "is_staff": True, "is_superuser": True},
        )
        if created:
            admin.set_password(password)
            admin.save()
        with audit_context(actor=admin):
            people = self._people(org, people_password)
            groups = self._groups(org, people)
            workflows = self._workflows(org, groups)
            for spec in org["integrations"]:
                self._integration(admin, spec, people, groups, workflows, resync=resync, scale=scale)
        self.stdout.write(self.style.SUCCESS("Demo organisation loaded."))
        shown = password if created else "(unchanged; set with --password on first load)"
        self.stdout.write(f"Sign in as: {admin.username} / {shown}")
        self.stdout.write(
            f"The demo people sign in with their username and the password {people_password!r} when they were"
            " created here; e.g. dorothy, who requests access, and annie, her manager, who approves."
        )

    def _people(self, org, password: str) -> dict:
        User = get_user_model()
        people = {}
        for p in org["people"]:
            fields = {k: v for k, v in p.items() if k not in ("username", "manager")}
            user, created = User.objects.get_or_create(username=p["username"], defaults=fields)
            if created:
                user.set_password(password)
                user.save()
            people[p["username"]] = user
        for p in org["people"]:
            if p.get("manager") and people[p["username"]].manager_id is None:
                people[p["username"]].manager = people[p["manager"]]
                people[p["username"]].save()
        return people

    def _groups(self, org, people) -> dict:
        groups = {}
        for g in org["groups"]:
            group, _ = Group.objects.get_or_create(name=g["name"])
            group.user_set.add(*(people[m] for m in g["members"]))
            groups[g["name"]] = group
        return groups

    def _workflows(self, org, groups) -> dict:
        workflows = {}
        for w in org["workflows"]:
            workflow, created = ApprovalWorkflow.objects.get_or_create(
                name=w["name"], defaults={"description": w["description"]}
            )
            if created:
                for position, s in enumerate(w["steps"], start=1):
                    step = ApprovalStep.objects.create(workflow=workflow, position=position, mode=s["mode"])
                    for a in s["approvers"]:
                        Approver.objects.create(step=step, kind=a["kind"], group=groups.get(a.get("group")))
            workflows[w["name"]] = workflow
        return workflows

    def _integration(self, admin, spec, people, groups, workflows, *, resync: bool, scale: float) -> None:
        config = dict(spec["config"])
        if spec["application"] == "demo":  # where the demo application keeps what the portal provisions
            config.setdefault(
                "dataDir",
                str(Path(settings.CONNECTOR_FILES_DIR) / "demo-provisioning" / slugify(spec["name"])),
            )
        for key in ("users", "groups"):
            if key in config:
                config[key] = max(1, int(config[key] * scale))
        integration = Integration.objects.filter(name=spec["name"]).first()
        if integration is None:
            integration = services.integration_create(
                actor=admin,
                application=spec["application"],
                name=spec["name"],
                connection_config=config,
                owner=people.get(spec.get("owner")),
                default_workflow=workflows.get(spec.get("default_workflow")),
                connector_attributes=spec.get("connector_attributes", {}),
                **spec.get("settings", {}),
            )
            maint = spec.get("maintainers", {})
            for username in maint.get("users", []):
                services.maintainer_add(actor=admin, integration=integration, user=people[username])
            for name in maint.get("groups", []):
                services.maintainer_add(actor=admin, integration=integration, group=groups[name])
        elif integration.last_synced_at and not resync:
            self.stdout.write(f"  {integration.name}: already loaded")
            return
        self.stdout.write(f"  {integration.name}: syncing {integration.application} …")
        try:
            result = sync_integration(actor=admin, integration=integration, full=True)
        except SyncError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            "    " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(result.counts.items()))
        )
        self._govern(integration, spec, people)

    @transaction.atomic
    def _govern(self, integration: Integration, spec: dict, people: dict) -> None:
        """Owners, tags, descriptions and a prerequisite, as an admin would have set them."""
        resources = list(
            Resource.objects.filter(integration=integration, removed_at=None).order_by("external_id")
        )
        # Resources are owned by the leads (managers and integration owners); the others only request access.
        leads = {p.manager_id for p in people.values()} | {integration.owner_id}
        owners = cycle([p for p in people.values() if p.pk in leads] or list(people.values()))
        by_tag: dict[str, list[int]] = {}
        for resource in resources:
            sample = Role.objects.filter(resource=resource).values_list("attributes", flat=True).first() or {}
            for tag, test in spec.get("tags", {}).items():
                if _matches(sample.get(test["attribute"]), test):
                    by_tag.setdefault(tag, []).append(resource.pk)
            if spec.get("owners_by_department") or resource.pk % 3 == 0:
                resource.owner = next(owners)
            if not resource.description:
                app, env = sample.get("application"), sample.get("environment")
                resource.description = f"{resource.kind or 'Resource'} of {app or integration.name}" + (
                    f" in {env}" if env else ""
                )
        Resource.objects.bulk_update(resources, ["owner", "description"], batch_size=1000)
        tags = {t.name: t for t in services.tags_for(by_tag)}
        through = Resource.tags.through
        through.objects.bulk_create(
            [through(resource_id=pk, tag_id=tags[name].pk) for name, pks in by_tag.items() for pk in pks],
            ignore_conflicts=True,
        )
        admins = Role.objects.filter(
            integration=integration, removed_at=None, external_id__endswith="-admins"
        )[:5]
        for role in admins:
            if PrerequisitePermission.objects.filter(role=role).exists():
                continue
            member = Role.objects.filter(resource=role.resource).exclude(pk=role.pk).order_by("name").first()
            if member is not None:
                prerequisite = PrerequisitePermission.objects.create(role=role)
                prerequisite.alternatives.add(member)
        audit.record(
            "integration.demo_governance",
            obj=integration,
            details={
                "owners_set": sum(1 for r in resources if r.owner_id),
                "tagged": {t: len(p) for t, p in by_tag.items()},
            },
        )
        first = resources[0] if resources else None
        if first is not None and spec.get("owner") and not Maintainer.objects.filter(resource=first).exists():
            Maintainer.objects.create(resource=first, user=people[spec["owner"]])
