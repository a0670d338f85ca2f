"""The permission matrix: every screen URL and every API endpoint, as every kind of user, compared.

The URLs come from the URL resolver, so a new screen or endpoint fails this test until it says here
how to call it (``SCREENS`` / ``API``, by URL name; for the API, one probe per HTTP method the view
answers). Each probe names the *action* it attempts (``integration.owner``, ``request.approve``…).
Writes send a valid-looking payload and each probe checks the database, so "allowed" means the
write happened, not merely that the status looked like success; reads are allowed when they answer
200 (or redirect elsewhere than to the sign-in page). Every probe runs in a savepoint that is
rolled back, so all of them start from the same world.

Then, for every user:
- no probe answers 500, and anonymous callers are allowed nothing but the public pages;
- **the screens never allow what the API refuses**: an action the screens let a user do, the API
  lets them do too (where the API has that action);
- an action only the screens have is allowed exactly where ``integrations.rights`` (or the service's
  own rule) says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from access.models import AccessDecision, AccessRequest, AccessTicket
from governance.models import ApiToken, AuditEvent, Job, User
from governance.tokens import api_token_create
from identities import rights as people_rights
from identities.models import IdentitySource, Person
from integrations import rights, services
from integrations.models import (
    Account,
    ApprovalWorkflow,
    Integration,
    Maintainer,
    Permission,
    PrerequisitePermission,
    Resource,
    Role,
    Rule,
)
from integrations.services.prerequisites import prerequisite_add
from integrations.services.rules import rule_create
from integrations.services.workflows import workflow_create

pytestmark = pytest.mark.django_db

WHO = ["admin", "owner", "maintainer", "member", "manager", None]

# Namespaces not walked, and why.
SKIPPED_PREFIXES = {"admin/": "the Django admin: Django's own staff-only site for power users"}
# URL names that are not endpoints.
NOT_ENDPOINTS = {"api-not-found": "the API's catch-all 404 for unknown paths"}


# -- the world -------------------------------------------------------------------------------------------


class W(dict):
    """The world, as attributes."""

    __getattr__ = dict.__getitem__


@pytest.fixture
def w(db, make_integration):
    make = User.objects.create_user
    manager = make("boss", "boss@example.com", "pw")
    people = {
        "admin": User.objects.create_superuser("root", "root@example.com", "pw"),
        "owner": make("owner", "owner@example.com", "pw"),
        "maintainer": make("maint", "maint@example.com", "pw"),
        "member": make("member", "member@example.com", "pw", manager=manager),
        "manager": manager,
    }
    admin = people["admin"]
    wf = workflow_create(actor=admin, name="Manager", steps=[{"approvers": [{"kind": "manager"}]}])
    wf_other = workflow_create(actor=admin, name="Other", steps=[{"approvers": [{"kind": "owner"}]}])
    world = W(people=people, wf=wf, wf_other=wf_other)
    for key, owner in (("mine", people["owner"]), ("theirs", None)):
        integ = make_integration(
            name=key.title(), owner=owner, default_workflow=wf, read_only=True, requestable=True
        )
        res = Resource.objects.create(
            integration=integ, external_id=f"{key}-db", name=f"{key} db", requestable=True
        )
        roles = [
            Role.objects.create(resource=res, external_id=f"{key}-{n}", name=n, requestable=True)
            for n in ("read", "write", "admin")
        ]
        account = Account.objects.create(
            integration=integ, external_id=f"{key}-member", identity="member", user=people["member"]
        )
        permission = Permission.objects.create(account=account, role=roles[0])
        world.update(
            {
                key: integ,
                f"{key}_resource": res,
                f"{key}_role": roles[0],
                f"{key}_role2": roles[1],
                f"{key}_role3": roles[2],
                f"{key}_account": account,
                f"{key}_permission": permission,
            }
        )
    mine = world.mine
    world["maintainer_row"] = services.maintainer_add(
        actor=admin, integration=mine, user=people["maintainer"]
    )
    world["prerequisite"] = prerequisite_add(
        actor=admin, alternatives=[world.mine_role2], role=world.mine_role3
    )
    world["rule"] = rule_create(actor=admin, name="Tag PCI", target="resources", actions={"tags": ["pci"]})
    world["job"] = Job.objects.create(
        kind="sync", integration_id=mine.pk, status=Job.Status.RUNNING, created_by=people["owner"]
    )
    # Requests of the member for Mine's roles: pending (the manager approves), granted, failed.
    base = {"requester": people["member"], "beneficiary": people["member"], "integration": mine}
    steps = [{"position": 1, "mode": "any", "approvers": [{"kind": "manager", "label": "Manager",
                                                          "automatic": False, "users": [manager.pk]}]}]  # fmt: skip
    pending = AccessRequest.objects.create(
        **base, role=world.mine_role, duration="1d", justification="matrix", workflow=wf, steps=steps
    )
    pending.pending_approvers.set([manager])
    granted = AccessRequest.objects.create(
        **base, role=world.mine_role2, duration="1d", justification="matrix", workflow=wf, steps=steps,
        status=AccessRequest.Status.GRANTED, account=world.mine_account,
    )  # fmt: skip
    granted.permissions.add(Permission.objects.create(account=world.mine_account, role=world.mine_role2))
    failed = AccessRequest.objects.create(
        **base, role=world.mine_role3, duration="1d", justification="matrix", workflow=wf, steps=steps,
        status=AccessRequest.Status.FAILED, error="connector down",
    )  # fmt: skip
    ticket = AccessTicket.objects.create(
        request=failed, kind=AccessTicket.Kind.GRANT, assignee=people["owner"], reason="by hand"
    )
    world.update(pending=pending, granted=granted, failed=failed, ticket=ticket)
    world["token"] = api_token_create(actor=people["member"], name="member script")[0]
    # Theirs is an identity source with a held run (Mine becomes one through the probes).
    world["source"] = IdentitySource.objects.create(
        integration=world.theirs,
        mapping={"username": "userName"},
        pending_since=timezone.now(),
        pending_summary={"terminated": 1, "active": 1, "limit_percent": 10, "names": ["Member"]},
    )
    world["event"] = AuditEvent.objects.filter(integration_id=mine.pk).first()
    assert world.event is not None
    return world


# -- probes ------------------------------------------------------------------------------------------------


@dataclass
class Probe:
    """One call: ``method`` on ``path(w)`` with ``data(w)``; a write when ``done`` is given: then allowed
    means ``done(w, user)`` holds afterwards (read from the database)."""

    action: str
    method: str
    path: Callable[[W], str]
    data: Callable[[W], Any] | None = None
    done: Callable[[W, Any], bool] | None = None
    content_type: str | None = None
    public: bool = False  # anonymous callers may (the sign-in page, the API's schema)
    extra: dict = field(default_factory=dict)


def read(action, path, **kw) -> Probe:
    return Probe(action, "get", path, **kw)


def write(action, method, path, data, done, **kw) -> Probe:
    return Probe(action, method, path, data=data, done=done, **kw)


def integ(w: W) -> Integration:
    return Integration.objects.filter(pk=w.mine.pk).first()


def after(model, obj):
    return model.objects.filter(pk=obj.pk).first()


def deleted_or_deleting(w, user) -> bool:
    """The integration is gone, or a job deleting it was started."""
    return integ(w) is None or Job.objects.filter(integration_id=w.mine.pk).exclude(kind="sync").exists()


def new_sync(w, user) -> bool:
    return Job.objects.filter(kind="sync", integration_id=w.mine.pk).count() > 1


def event_by(action: str):
    return lambda w, user: AuditEvent.objects.filter(
        action=action, actor_id=getattr(user, "pk", None)
    ).exists()


def decided(approved: bool):
    return lambda w, user: AccessDecision.objects.filter(request=w.pending, approved=approved).exists()


def pending_became(status: str):
    return lambda w, user: after(AccessRequest, w.pending).status == status


def linked_to(who: str | None):
    """The member's account of Mine is now held by ``who`` (None: nobody), as set by hand."""

    def done(w, user) -> bool:
        account = after(Account, w.mine_account)
        expected = w.people[who].pk if who else None
        return (account.user_id, account.link_source) == (expected, Account.LinkSource.HAND)

    return done


def service_owned_by(who: str):
    return lambda w, user: after(Account, w.mine_account).owner_id == w.people[who].pk


CONFIG = {"url": "https://demo.example.com", "connectionOption": "token", "users": 41, "groups": 10,
          "memberships": 2, "seed": 3}  # fmt: skip
FLAGS = {"read_only": "on", "requestable": "on"}
WORKFLOW_POST = {
    "name": "Matrix",
    "description": "",
    "rules-0-max_duration": "",
    "rules-0-steps-0-mode": "any",
    "rules-0-steps-0-approvers-0-kind": "manager",
}

SCREENS: dict[str, list[Probe]] = {
    "login": [read("sign-in", lambda w: "/login/", public=True)],
    "logout": [Probe("sign-out", "post", lambda w: "/logout/", public=True)],
    "tokens": [
        read("token.list", lambda w: "/account/tokens/"),
        write(
            "token.create",
            "post",
            lambda w: "/account/tokens/",
            lambda w: {"name": "matrix"},
            lambda w, u: ApiToken.objects.filter(name="matrix", user_id=getattr(u, "pk", None)).exists(),
        ),
    ],
    "token-revoke": [
        write(
            "token.revoke",
            "post",
            lambda w: f"/account/tokens/{w.token.pk}/revoke",
            lambda w: {},
            lambda w, u: after(ApiToken, w.token).revoked_at is not None,
        ),
    ],
    "home": [read("home", lambda w: "/")],
    "application-icon": [read("catalogue.icon", lambda w: "/catalogue/demo/icon")],
    "list": [read("integration.list", lambda w: "/integrations/")],
    "add": [read("integration.create.form", lambda w: "/integrations/add/")],
    "add-form": [
        read("integration.create.form", lambda w: "/integrations/add/demo/"),
        write(
            "integration.create",
            "post",
            lambda w: "/integrations/add/demo/",
            lambda w: {
                "name": "Matrix",
                "connection_option": "token",
                "config": json.dumps({**CONFIG, "apiToken": "demo"}),
                "owner": "",
                "default_workflow": "",
                "agent": "",
                **FLAGS,
            },
            lambda w, u: Integration.objects.filter(name="Matrix").exists(),
        ),
    ],
    "detail": [
        read("integration.read", lambda w: f"/integrations/{w.mine.pk}/"),
        read("integration.read.theirs", lambda w: f"/integrations/{w.theirs.pk}/"),
    ],
    "settings": [
        write(
            "integration.rename",
            "post",
            lambda w: f"/integrations/{w.mine.pk}/settings",
            lambda w: {"name": "Renamed", "owner": w.people["owner"].pk, **FLAGS},
            lambda w, u: integ(w).name == "Renamed",
        ),
        write(
            "integration.owner",
            "post",
            lambda w: f"/integrations/{w.mine.pk}/settings",
            lambda w: {"name": w.mine.name, "owner": w.people["member"].pk, **FLAGS},
            lambda w, u: integ(w).owner_id == w.people["member"].pk,
        ),
    ],
    "workflow": [
        write(
            "integration.workflow",
            "post",
            lambda w: f"/integrations/{w.mine.pk}/workflow",
            lambda w: {"workflow": w.wf_other.pk},
            lambda w, u: integ(w).default_workflow_id == w.wf_other.pk,
        ),
    ],
    "connection": [
        write(
            "integration.connection",
            "post",
            lambda w: f"/integrations/{w.mine.pk}/connection",
            lambda w: {"config": json.dumps(CONFIG), "connector_attributes": ""},
            lambda w, u: integ(w).connection_config.get("users") == 41,
        ),
    ],
    "test": [
        write(
            "integration.test",
            "post",
            lambda w: f"/integrations/{w.mine.pk}/test",
            lambda w: {},
            event_by("integration.test_connection"),
        )
    ],
    "maintainer-add": [
        write(
            "integration.maintainers",
            "post",
            lambda w: f"/integrations/{w.mine.pk}/maintainers",
            lambda w: {"user": w.people["member"].pk},
            lambda w, u: Maintainer.objects.filter(integration=w.mine, user=w.people["member"]).exists(),
        ),
    ],
    "sync": [
        write("integration.sync", "post", lambda w: f"/integrations/{w.mine.pk}/sync", lambda w: {}, new_sync)
    ],
    "sync-status": [read("integration.read", lambda w: f"/integrations/{w.mine.pk}/sync/status")],
    "sync-cancel": [
        write(
            "job.cancel",
            "post",
            lambda w: f"/integrations/{w.mine.pk}/sync/cancel",
            lambda w: {},
            lambda w, u: after(Job, w.job).cancel_requested,
        ),
    ],
    "delete": [
        read("integration.delete.form", lambda w: f"/integrations/{w.mine.pk}/delete"),
        write(
            "integration.delete",
            "post",
            lambda w: f"/integrations/{w.mine.pk}/delete",
            lambda w: {"confirm": w.mine.name},
            deleted_or_deleting,
        ),
    ],
    "maintainer-remove": [
        write(
            "integration.maintainers",
            "post",
            lambda w: f"/maintainers/{w.maintainer_row.pk}/remove",
            lambda w: {},
            lambda w, u: after(Maintainer, w.maintainer_row) is None,
        ),
    ],
    "prerequisite-add": [
        write(
            "prerequisite.add",
            "post",
            lambda w: f"/prerequisites/role/{w.mine_role.pk}/add",
            lambda w: {"alternatives": [w.mine_role2.pk]},
            lambda w, u: PrerequisitePermission.objects.filter(role=w.mine_role).exists(),
        ),
    ],
    "prerequisite-remove": [
        write(
            "prerequisite.remove",
            "post",
            lambda w: f"/prerequisites/{w.prerequisite.pk}/remove",
            lambda w: {},
            lambda w, u: after(PrerequisitePermission, w.prerequisite) is None,
        ),
    ],
    "resources": [read("resource.list", lambda w: "/resources/")],
    "resource": [
        read("resource.read", lambda w: f"/resources/{w.mine_resource.pk}/"),
        read("resource.read.theirs", lambda w: f"/resources/{w.theirs_resource.pk}/"),
    ],
    "resource-roles": [read("resource.read", lambda w: f"/resources/{w.mine_resource.pk}/roles")],
    "resource-settings": [
        write(
            "resource.describe",
            "post",
            lambda w: f"/resources/{w.mine_resource.pk}/settings",
            lambda w: {
                "name": w.mine_resource.name,
                "description": "Matrix",
                "owner": "",
                "tags": "",
                "requestable": "on",
            },
            lambda w, u: after(Resource, w.mine_resource).description == "Matrix",
        ),
        write(
            "resource.owner",
            "post",
            lambda w: f"/resources/{w.mine_resource.pk}/settings",
            lambda w: {"name": w.mine_resource.name, "owner": w.people["member"].pk, "requestable": "on"},
            lambda w, u: after(Resource, w.mine_resource).owner_id == w.people["member"].pk,
        ),
    ],
    "resource-workflow": [
        write(
            "resource.workflow",
            "post",
            lambda w: f"/resources/{w.mine_resource.pk}/workflow",
            lambda w: {"workflow": w.wf_other.pk},
            lambda w, u: after(Resource, w.mine_resource).workflow_id == w.wf_other.pk,
        ),
    ],
    "resource-maintainer-add": [
        write(
            "resource.maintainers",
            "post",
            lambda w: f"/resources/{w.mine_resource.pk}/maintainers",
            lambda w: {"user": w.people["member"].pk},
            lambda w, u: Maintainer.objects.filter(resource=w.mine_resource).exists(),
        ),
    ],
    "accounts": [read("account.list", lambda w: "/accounts/")],
    "account": [
        read("account.read", lambda w: f"/accounts/{w.mine_account.pk}/"),
        read("account.read.theirs", lambda w: f"/accounts/{w.theirs_account.pk}/"),
    ],
    "account-link": [
        write(
            "account.link",
            "post",
            lambda w: f"/accounts/{w.mine_account.pk}/link",
            lambda w: {"user": w.people["owner"].pk},
            linked_to("owner"),
        ),
        write(
            "account.unlink",
            "post",
            lambda w: f"/accounts/{w.mine_account.pk}/link",
            lambda w: {"user": ""},
            linked_to(None),
        ),
    ],
    "account-service": [
        write(
            "account.service",
            "post",
            lambda w: f"/accounts/{w.mine_account.pk}/service-account",
            lambda w: {"owner": w.people["maintainer"].pk},
            service_owned_by("maintainer"),
        ),
    ],
    "roles": [read("role.list", lambda w: "/roles/")],
    "role-options": [read("role.list", lambda w: f"/roles/options?integration={w.mine.pk}")],
    "role": [
        read("role.read", lambda w: f"/roles/{w.mine_role.pk}/"),
        read("role.read.theirs", lambda w: f"/roles/{w.theirs_role.pk}/"),
    ],
    "role-settings": [
        write(
            "role.tags",
            "post",
            lambda w: f"/roles/{w.mine_role.pk}/settings",
            lambda w: {"requestable": "on", "tags": "matrix"},
            lambda w, u: after(Role, w.mine_role).tags.filter(name="matrix").exists(),
        ),
    ],
    "role-workflow": [
        write(
            "role.workflow",
            "post",
            lambda w: f"/roles/{w.mine_role.pk}/workflow",
            lambda w: {"workflow": w.wf_other.pk},
            lambda w, u: after(Role, w.mine_role).workflow_id == w.wf_other.pk,
        ),
    ],
    "rules": [read("rule.list", lambda w: "/rules/")],
    "rule-add": [
        read("rule.create.form", lambda w: "/rules/add/"),
        write(
            "rule.create",
            "post",
            lambda w: "/rules/add/",
            lambda w: {
                "name": "Matrix",
                "target": "resources",
                "match": "all",
                "scope": "existing_and_new",
                "enabled": "on",
                "position": 100,
                "c-set_tags": "on",
                "c-tags": "matrix",
            },
            lambda w, u: Rule.objects.filter(name="Matrix").exists(),
        ),
    ],
    "rule-edit": [
        read("rule.read", lambda w: f"/rules/{w.rule.pk}/"),
        write(
            "rule.update",
            "post",
            lambda w: f"/rules/{w.rule.pk}/",
            lambda w: {
                "name": "Renamed",
                "target": "resources",
                "match": "all",
                "scope": "existing_and_new",
                "enabled": "on",
                "position": 100,
                "c-set_tags": "on",
                "c-tags": "pci",
            },
            lambda w, u: after(Rule, w.rule).name == "Renamed",
        ),
    ],
    "rule-toggle": [
        write(
            "rule.update",
            "post",
            lambda w: f"/rules/{w.rule.pk}/toggle",
            lambda w: {},
            lambda w, u: not after(Rule, w.rule).enabled,
        )
    ],
    "rule-delete": [
        write(
            "rule.delete",
            "post",
            lambda w: f"/rules/{w.rule.pk}/delete",
            lambda w: {},
            lambda w, u: after(Rule, w.rule) is None,
        )
    ],
    "rule-preview": [read("rule.read", lambda w: f"/rules/{w.rule.pk}/preview")],
    "rule-apply": [
        write(
            "rule.apply",
            "post",
            lambda w: f"/rules/{w.rule.pk}/apply",
            lambda w: {},
            lambda w, u: after(Rule, w.rule).last_applied_at is not None,
        )
    ],
    "bulk": [read("bulk.form", lambda w: "/bulk/?target=resources")],
    "bulk-preview": [
        Probe(
            "bulk.preview",
            "post",
            lambda w: "/bulk/preview",
            data=lambda w: {
                "target": "resources",
                "scope": "selected",
                "ids": [w.mine_resource.pk],
                "c-set_tags": "on",
                "c-tags": "bulk",
            },
        ),
    ],
    "bulk-apply": [
        write(
            "resource.tags",
            "post",
            lambda w: "/bulk/apply",
            lambda w: {
                "target": "resources",
                "scope": "selected",
                "ids": [w.mine_resource.pk],
                "changes": json.dumps({"tags": ["bulk"]}),
            },
            lambda w, u: after(Resource, w.mine_resource).tags.filter(name="bulk").exists(),
        ),
        write(
            "resource.owner",
            "post",
            lambda w: "/bulk/apply",
            lambda w: {
                "target": "resources",
                "scope": "selected",
                "ids": [w.mine_resource.pk],
                "changes": json.dumps({"owner": w.people["member"].pk}),
            },
            lambda w, u: after(Resource, w.mine_resource).owner_id == w.people["member"].pk,
        ),
        write(
            "resource.workflow",
            "post",
            lambda w: "/bulk/apply",
            lambda w: {
                "target": "resources",
                "scope": "selected",
                "ids": [w.mine_resource.pk],
                "changes": json.dumps({"workflow": w.wf_other.pk}),
            },
            lambda w, u: after(Resource, w.mine_resource).workflow_id == w.wf_other.pk,
        ),
        write(
            "integration.owner",
            "post",
            lambda w: "/bulk/apply",
            lambda w: {
                "target": "integrations",
                "scope": "selected",
                "ids": [w.mine.pk],
                "changes": json.dumps({"owner": w.people["member"].pk}),
            },
            lambda w, u: integ(w).owner_id == w.people["member"].pk,
        ),
    ],
    "job": [read("job.read", lambda w: f"/jobs/{w.job.pk}/")],
    "audit": [read("audit.list", lambda w: "/audit/")],
    "audit-csv": [read("audit.list", lambda w: "/audit/export.csv")],
    "request-catalogue": [read("request.catalogue", lambda w: "/request/")],
    "request-new": [
        read("request.form", lambda w: f"/request/{w.theirs_role.pk}/"),
        write(
            "request.create",
            "post",
            lambda w: f"/request/{w.theirs_role.pk}/",
            lambda w: {"duration": "1d", "justification": "matrix"},
            lambda w, u: AccessRequest.objects.filter(role=w.theirs_role).exists(),
        ),
    ],
    "requests": [read("request.list", lambda w: "/requests/")],
    "approvals": [read("request.approvals", lambda w: "/approvals/")],
    "request-detail": [read("request.read", lambda w: f"/requests/{w.pending.pk}/")],
    "request-approve": [
        write(
            "request.approve",
            "post",
            lambda w: f"/requests/{w.pending.pk}/approve",
            lambda w: {"comment": "ok"},
            decided(True),
        )
    ],
    "request-deny": [
        write(
            "request.deny",
            "post",
            lambda w: f"/requests/{w.pending.pk}/deny",
            lambda w: {"comment": "no"},
            decided(False),
        )
    ],
    "request-cancel": [
        write(
            "request.cancel",
            "post",
            lambda w: f"/requests/{w.pending.pk}/cancel",
            lambda w: {},
            pending_became("cancelled"),
        )
    ],
    "request-end": [
        write(
            "request.end",
            "post",
            lambda w: f"/requests/{w.granted.pk}/end",
            lambda w: {},
            lambda w, u: after(AccessRequest, w.granted).revoked_by_id is not None,
        )
    ],
    "request-retry": [
        write(
            "request.retry",
            "post",
            lambda w: f"/requests/{w.failed.pk}/retry",
            lambda w: {},
            event_by("access_request.retried"),
        )
    ],
    "ticket-close": [
        write(
            "ticket.close",
            "post",
            lambda w: f"/tickets/{w.ticket.pk}/close",
            lambda w: {"note": "done"},
            lambda w, u: after(AccessTicket, w.ticket).status != "open",
        )
    ],
    "people": [read("person.list", lambda w: "/people/")],
    "identity-sources": [read("identity_source.list", lambda w: "/identity-sources/")],
    "identity-source": [
        read("identity_source.read", lambda w: f"/identity-sources/{w.theirs.pk}/"),
        write(
            "identity_source.create",
            "post",
            lambda w: f"/identity-sources/{w.mine.pk}/",
            lambda w: {
                "map_username": "userName",
                "map_email": "email",
                "position": 5,
                "manager_key": "username",
                "leaver_limit_percent": 10,
                "enabled": "on",
            },  # fmt: skip
            lambda w, u: IdentitySource.objects.filter(integration=w.mine).exists(),
        ),
    ],
    "identity-source-apply": [
        write(
            "identity_source.apply",
            "post",
            lambda w: f"/identity-sources/{w.theirs.pk}/apply",
            None,
            lambda w, u: after(IdentitySource, w.source).last_applied_at is not None,
        )  # fmt: skip
    ],
    "identity-source-confirm": [
        write(
            "identity_source.confirm",
            "post",
            lambda w: f"/identity-sources/{w.theirs.pk}/confirm",
            None,
            lambda w, u: after(IdentitySource, w.source).last_applied_at is not None,
        )  # fmt: skip
    ],
    "identity-source-discard": [
        write(
            "identity_source.discard",
            "post",
            lambda w: f"/identity-sources/{w.theirs.pk}/discard",
            None,
            lambda w, u: after(IdentitySource, w.source).pending_since is None
            and after(IdentitySource, w.source).last_applied_at is None,
        )  # fmt: skip
    ],
    "person": [
        read("person.read", lambda w: f"/people/{w.people['member'].pk}/"),  # the manager's report
        read("person.read.other", lambda w: f"/people/{w.people['owner'].pk}/"),
    ],
    "person-edit": [
        write(
            "person.update",
            "post",
            lambda w: f"/people/{w.people['member'].pk}/edit",
            lambda w: {
                "email": "member@example.com",
                "manager": "boss",
                "status": "leave",
                "location": "Matrix",
            },
            lambda w, u: Person.objects.get(pk=w.people["member"].pk).location == "Matrix",
        )
    ],
    "workflows": [read("workflow.list", lambda w: "/workflows/")],
    "workflow-add": [
        read("workflow.create.form", lambda w: "/workflows/add/"),
        write(
            "workflow.create",
            "post",
            lambda w: "/workflows/add/",
            lambda w: WORKFLOW_POST,
            lambda w, u: ApprovalWorkflow.objects.filter(name="Matrix").exists(),
        ),
    ],
    "workflow-edit": [
        read("workflow.read", lambda w: f"/workflows/{w.wf_other.pk}/"),
        write(
            "workflow.update",
            "post",
            lambda w: f"/workflows/{w.wf_other.pk}/",
            lambda w: WORKFLOW_POST,
            lambda w, u: after(ApprovalWorkflow, w.wf_other).name == "Matrix",
        ),
    ],
    "workflow-delete": [
        read("workflow.delete.form", lambda w: f"/workflows/{w.wf_other.pk}/delete"),
        write(
            "workflow.delete",
            "post",
            lambda w: f"/workflows/{w.wf_other.pk}/delete",
            lambda w: {"move_to": ""},
            lambda w, u: after(ApprovalWorkflow, w.wf_other) is None,
        ),
    ],
}

JSON_PATCH = "application/json-patch+json"


def source_probes(prefix: str) -> list[Probe]:
    url = lambda w: f"{prefix}v3/sources/{w.mine.pk}"  # noqa: E731
    return [
        read("integration.read", url),
        write("integration.rename", "patch", url, lambda w: [{"op": "replace", "path": "/name", "value": "Renamed"}],
              lambda w, u: integ(w).name == "Renamed", content_type=JSON_PATCH),
        write("integration.owner", "patch", url,
              lambda w: [{"op": "replace", "path": "/owner",
                          "value": {"type": "IDENTITY", "id": str(w.people["member"].pk)}}],
              lambda w, u: integ(w).owner_id == w.people["member"].pk, content_type=JSON_PATCH),
        write("integration.connection", "patch", url,
              lambda w: [{"op": "add", "path": "/connectorAttributes/filterString", "value": 'id == "x"'}],
              lambda w, u: (integ(w).connector_attributes or {}).get("filterString") == 'id == "x"',
              content_type=JSON_PATCH),
    ]  # fmt: skip


API: dict[str, list[Probe]] = {
    "api-schema": [read("api.schema", lambda w: "/api/schema/", public=True)],
    "api-docs": [read("api.schema", lambda w: "/api/docs/", public=True)],
    "api-source": source_probes("/api/"),
    "isc-source": source_probes("/"),
    "api-integration-list": [
        read("integration.list", lambda w: "/api/integrations/"),
        write("integration.create", "post", lambda w: "/api/integrations/",
              lambda w: {"application": "demo", "name": "Matrix", "connection_config": {**CONFIG, "apiToken": "demo"}},
              lambda w, u: Integration.objects.filter(name="Matrix").exists()),
    ],
    "api-integration-detail": [
        read("integration.read", lambda w: f"/api/integrations/{w.mine.pk}/"),
        read("integration.read.theirs", lambda w: f"/api/integrations/{w.theirs.pk}/"),
        write("integration.rename", "patch", lambda w: f"/api/integrations/{w.mine.pk}/", lambda w: {"name": "Renamed"},
              lambda w, u: integ(w).name == "Renamed"),
        write("integration.owner", "patch", lambda w: f"/api/integrations/{w.mine.pk}/",
              lambda w: {"owner": w.people["member"].pk}, lambda w, u: integ(w).owner_id == w.people["member"].pk),
        write("integration.workflow", "patch", lambda w: f"/api/integrations/{w.mine.pk}/",
              lambda w: {"default_workflow": w.wf_other.pk},
              lambda w, u: integ(w).default_workflow_id == w.wf_other.pk),
        write("integration.connection", "patch", lambda w: f"/api/integrations/{w.mine.pk}/",
              lambda w: {"connection_config": CONFIG}, lambda w, u: integ(w).connection_config.get("users") == 41),
        write("integration.delete", "delete", lambda w: f"/api/integrations/{w.mine.pk}/", None,
              deleted_or_deleting),
    ],
    "api-integration-sync": [write("integration.sync", "post", lambda w: f"/api/integrations/{w.mine.pk}/sync/",
                                   lambda w: {}, new_sync)],
    "api-integration-test-connection": [
        write("integration.test", "post", lambda w: f"/api/integrations/{w.mine.pk}/test-connection/", lambda w: {},
              event_by("integration.test_connection")),
    ],
    "api-resource-list": [read("resource.list", lambda w: "/api/resources/")],
    "api-resource-detail": [
        read("resource.read", lambda w: f"/api/resources/{w.mine_resource.pk}/"),
        read("resource.read.theirs", lambda w: f"/api/resources/{w.theirs_resource.pk}/"),
        write("resource.describe", "patch", lambda w: f"/api/resources/{w.mine_resource.pk}/",
              lambda w: {"description": "Matrix"}, lambda w, u: after(Resource, w.mine_resource).description == "Matrix"),
        write("resource.owner", "patch", lambda w: f"/api/resources/{w.mine_resource.pk}/",
              lambda w: {"owner": w.people["member"].pk},
              lambda w, u: after(Resource, w.mine_resource).owner_id == w.people["member"].pk),
        write("resource.workflow", "patch", lambda w: f"/api/resources/{w.mine_resource.pk}/",
              lambda w: {"workflow": w.wf_other.pk},
              lambda w, u: after(Resource, w.mine_resource).workflow_id == w.wf_other.pk),
        write("resource.tags", "patch", lambda w: f"/api/resources/{w.mine_resource.pk}/",
              lambda w: {"tags": ["bulk"]}, lambda w, u: after(Resource, w.mine_resource).tags.filter(name="bulk").exists()),
    ],
    "api-role-list": [read("role.list", lambda w: "/api/roles/")],
    "api-role-detail": [
        read("role.read", lambda w: f"/api/roles/{w.mine_role.pk}/"),
        read("role.read.theirs", lambda w: f"/api/roles/{w.theirs_role.pk}/"),
        write("role.tags", "patch", lambda w: f"/api/roles/{w.mine_role.pk}/", lambda w: {"tags": ["matrix"]},
              lambda w, u: after(Role, w.mine_role).tags.filter(name="matrix").exists()),
        write("role.workflow", "patch", lambda w: f"/api/roles/{w.mine_role.pk}/", lambda w: {"workflow": w.wf_other.pk},
              lambda w, u: after(Role, w.mine_role).workflow_id == w.wf_other.pk),
    ],
    "api-account-list": [read("account.list", lambda w: "/api/accounts/")],
    "api-account-detail": [read("account.read", lambda w: f"/api/accounts/{w.mine_account.pk}/"),
                           read("account.read.theirs", lambda w: f"/api/accounts/{w.theirs_account.pk}/")],
    "api-account-link": [
        write("account.link", "post", lambda w: f"/api/accounts/{w.mine_account.pk}/link/",
              lambda w: {"user": w.people["owner"].pk}, linked_to("owner")),
        write("account.unlink", "post", lambda w: f"/api/accounts/{w.mine_account.pk}/link/",
              lambda w: {"user": None}, linked_to(None)),
    ],
    "api-account-service-account": [
        write("account.service", "post", lambda w: f"/api/accounts/{w.mine_account.pk}/service-account/",
              lambda w: {"owner": w.people["maintainer"].pk}, service_owned_by("maintainer")),
    ],
    "api-permission-list": [read("permission.list", lambda w: "/api/permissions/")],
    "api-permission-detail": [read("permission.read", lambda w: f"/api/permissions/{w.mine_permission.pk}/")],
    "api-workflow-list": [
        read("workflow.list", lambda w: "/api/workflows/"),
        write("workflow.create", "post", lambda w: "/api/workflows/",
              lambda w: {"name": "Matrix", "steps": [{"approvers": [{"kind": "manager"}]}]},
              lambda w, u: ApprovalWorkflow.objects.filter(name="Matrix").exists()),
    ],
    "api-workflow-detail": [
        read("workflow.read", lambda w: f"/api/workflows/{w.wf_other.pk}/"),
        write("workflow.update", "patch", lambda w: f"/api/workflows/{w.wf_other.pk}/", lambda w: {"name": "Matrix"},
              lambda w, u: after(ApprovalWorkflow, w.wf_other).name == "Matrix"),
        write("workflow.delete", "delete", lambda w: f"/api/workflows/{w.wf_other.pk}/", None,
              lambda w, u: after(ApprovalWorkflow, w.wf_other) is None),
    ],
    "api-rule-list": [
        read("rule.list", lambda w: "/api/rules/"),
        write("rule.create", "post", lambda w: "/api/rules/",
              lambda w: {"name": "Matrix", "target": "resources", "actions": {"tags": ["matrix"]}},
              lambda w, u: Rule.objects.filter(name="Matrix").exists()),
    ],
    "api-rule-detail": [
        read("rule.read", lambda w: f"/api/rules/{w.rule.pk}/"),
        write("rule.update", "patch", lambda w: f"/api/rules/{w.rule.pk}/", lambda w: {"name": "Renamed"},
              lambda w, u: after(Rule, w.rule).name == "Renamed"),
        write("rule.update", "patch", lambda w: f"/api/rules/{w.rule.pk}/", lambda w: {"enabled": False},
              lambda w, u: not after(Rule, w.rule).enabled),
        write("rule.delete", "delete", lambda w: f"/api/rules/{w.rule.pk}/", None, lambda w, u: after(Rule, w.rule) is None),
    ],
    "api-rule-apply": [write("rule.apply", "post", lambda w: f"/api/rules/{w.rule.pk}/apply/", lambda w: {},
                             lambda w, u: after(Rule, w.rule).last_applied_at is not None)],
    "api-job-list": [read("job.list", lambda w: "/api/jobs/")],
    "api-job-detail": [read("job.read", lambda w: f"/api/jobs/{w.job.pk}/")],
    "api-job-cancel": [write("job.cancel", "post", lambda w: f"/api/jobs/{w.job.pk}/cancel/", lambda w: {},
                             lambda w, u: after(Job, w.job).cancel_requested)],
    "api-audit-event-list": [read("audit.list", lambda w: "/api/audit-events/"),
                             read("audit.list", lambda w: "/api/audit-events/?format=csv")],
    "api-audit-event-detail": [read("audit.read", lambda w: f"/api/audit-events/{w.event.pk}/")],
    "api-access-request-list": [
        read("request.list", lambda w: "/api/access-requests/"),
        write("request.create", "post", lambda w: "/api/access-requests/",
              lambda w: {"role": w.theirs_role.pk, "duration": "1d", "justification": "matrix"},
              lambda w, u: AccessRequest.objects.filter(role=w.theirs_role).exists()),
    ],
    "api-access-request-detail": [read("request.read", lambda w: f"/api/access-requests/{w.pending.pk}/")],
    "api-access-request-approve": [write("request.approve", "post", lambda w: f"/api/access-requests/{w.pending.pk}/approve/",
                                         lambda w: {"comment": "ok"}, decided(True))],
    "api-access-request-deny": [write("request.deny", "post", lambda w: f"/api/access-requests/{w.pending.pk}/deny/",
                                      lambda w: {"comment": "no"}, decided(False))],
    "api-access-request-cancel": [write("request.cancel", "post", lambda w: f"/api/access-requests/{w.pending.pk}/cancel/",
                                        lambda w: {}, pending_became("cancelled"))],
    "api-access-request-end": [write("request.end", "post", lambda w: f"/api/access-requests/{w.granted.pk}/end/",
                                     lambda w: {}, lambda w, u: after(AccessRequest, w.granted).revoked_by_id is not None)],
    "api-access-ticket-list": [read("ticket.list", lambda w: "/api/access-tickets/")],
    "api-access-ticket-detail": [read("ticket.read", lambda w: f"/api/access-tickets/{w.ticket.pk}/")],
    "api-access-ticket-close": [write("ticket.close", "post", lambda w: f"/api/access-tickets/{w.ticket.pk}/close/",
                                      lambda w: {"note": "done"}, lambda w, u: after(AccessTicket, w.ticket).status != "open")],
    "api-token-list": [
        read("token.list", lambda w: "/api/tokens/"),
        write("token.create", "post", lambda w: "/api/tokens/", lambda w: {"name": "matrix"},
              lambda w, u: ApiToken.objects.filter(name="matrix", user_id=getattr(u, "pk", None)).exists()),
    ],
    "api-token-detail": [
        read("token.read", lambda w: f"/api/tokens/{w.token.pk}/"),
        write("token.revoke", "delete", lambda w: f"/api/tokens/{w.token.pk}/", None,
              lambda w, u: after(ApiToken, w.token).revoked_at is not None),
    ],
    "api-person-list": [read("person.list", lambda w: "/api/people/")],
    "api-identity-source-list": [
        read("identity_source.list", lambda w: "/api/identity-sources/"),
        write("identity_source.create", "post", lambda w: "/api/identity-sources/",
              lambda w: {"integration": w.mine.pk, "mapping": {"username": "userName", "email": "email"},
                         "manager_key": "username", "position": 5},
              lambda w, u: IdentitySource.objects.filter(integration=w.mine).exists()),
    ],
    "api-identity-source-detail": [
        read("identity_source.read", lambda w: f"/api/identity-sources/{w.source.pk}/"),
        write("identity_source.update", "patch", lambda w: f"/api/identity-sources/{w.source.pk}/",
              lambda w: {"leaver_limit_percent": 42},
              lambda w, u: after(IdentitySource, w.source).leaver_limit_percent == 42),
    ],
    "api-identity-source-apply": [
        write("identity_source.apply", "post", lambda w: f"/api/identity-sources/{w.source.pk}/apply/", None,
              lambda w, u: after(IdentitySource, w.source).last_applied_at is not None)
    ],
    "api-identity-source-confirm": [
        write("identity_source.confirm", "post", lambda w: f"/api/identity-sources/{w.source.pk}/confirm/", None,
              lambda w, u: after(IdentitySource, w.source).last_applied_at is not None)
    ],
    "api-identity-source-discard": [
        write("identity_source.discard", "post", lambda w: f"/api/identity-sources/{w.source.pk}/discard/", None,
              lambda w, u: after(IdentitySource, w.source).pending_since is None
              and after(IdentitySource, w.source).last_applied_at is None)
    ],
    "api-person-detail": [read("person.read", lambda w: f"/api/people/{w.people['member'].pk}/"),
                          read("person.read.other", lambda w: f"/api/people/{w.people['owner'].pk}/")],
}  # fmt: skip


def _admin(u) -> bool:
    return rights.is_admin(u)


def _signed_in(w, u) -> bool:
    return bool(u and u.is_authenticated)


# Actions only the screens have: who may, by the rule the screens and services follow.
SCREEN_ONLY: dict[str, Callable[[W, Any], bool]] = {
    "sign-in": lambda w, u: True,
    "sign-out": lambda w, u: True,
    "home": _signed_in,
    "catalogue.icon": _signed_in,
    "integration.create.form": lambda w, u: _admin(u),
    "integration.delete.form": lambda w, u: rights.can_delete_integration(u, w.mine),
    "integration.maintainers": lambda w, u: rights.can_manage(u, w.mine),
    "resource.maintainers": lambda w, u: rights.can_manage(u, w.mine_resource),
    "prerequisite.add": lambda w, u: rights.can_manage(u, w.mine_role)
    and rights.prerequisite_roles(u, w.mine_role).filter(pk=w.mine_role2.pk).exists(),
    "prerequisite.remove": lambda w, u: rights.can_manage(u, w.mine_role3),
    "rule.create.form": lambda w, u: _admin(u),
    "workflow.create.form": lambda w, u: _admin(u),
    "workflow.delete.form": lambda w, u: _admin(u),
    "bulk.form": lambda w, u: rights.manages_inventory(u),
    "bulk.preview": lambda w, u: rights.manages_inventory(u),
    "request.catalogue": _signed_in,
    "request.form": _signed_in,
    "request.approvals": _signed_in,
    "request.retry": lambda w, u: rights.can_manage(u, w.mine),
    "person.update": lambda w, u: people_rights.can_edit_person(
        u, Person.objects.get(pk=w.people["member"].pk)
    ),
}


# -- walking the URL resolver ----------------------------------------------------------------------------


def endpoints() -> dict[str, tuple[str, Any]]:
    """Every URL name → (pattern, callback), from the resolver."""
    found: dict[str, tuple[str, Any]] = {}

    def walk(resolver, prefix=""):
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                if str(p.pattern) in SKIPPED_PREFIXES:
                    continue
                walk(p, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name not in found:
                found[p.name] = (prefix + str(p.pattern), p.callback)

    walk(get_resolver())
    return found


def api_methods(callback) -> set[str]:
    """The HTTP methods an API view answers (besides HEAD and OPTIONS)."""
    actions = getattr(callback, "actions", None)
    if actions:  # DRF adds "head" to a viewset's actions once it served a GET
        return set(actions) - {"head", "options"}
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    return {m for m in cls.http_method_names if m not in ("head", "options") and hasattr(cls, m)}


def test_every_url_is_probed():
    """A new URL (or a new method of an API view) fails here until the matrix knows how to call it."""
    missing = []
    for name, (pattern, callback) in endpoints().items():
        if name in NOT_ENDPOINTS:
            continue
        if name in API:
            covered = {p.method for p in API[name]}
            lacking = api_methods(callback) - covered
            if lacking:
                missing.append(f"{name} ({pattern}): methods {sorted(lacking)}")
        elif name not in SCREENS:
            missing.append(f"{name} ({pattern})")
    assert not missing, "URLs the permission matrix does not know how to call:\n" + "\n".join(missing)
    stale = (set(SCREENS) | set(API)) - set(endpoints())
    assert not stale, f"probes of URLs that no longer exist: {sorted(stale)}"
    for probes in SCREENS.values():
        for p in probes:
            assert (
                p.public
                or p.action in SCREEN_ONLY
                or any(q.action == p.action for qs in API.values() for q in qs)
            ), f"the screens' action {p.action!r} has neither an API counterpart nor a rule in SCREEN_ONLY"


# -- running the probes -----------------------------------------------------------------------------------


def run(client: Client, w: W, user, probe: Probe) -> tuple[bool, int]:
    """(allowed, status) of one probe, in a savepoint rolled back afterwards."""
    cache.clear()  # the API's throttle counters: hundreds of calls here are not an attack
    kwargs: dict[str, Any] = {}
    data = probe.data(w) if probe.data else None
    if probe.content_type:
        kwargs = {"data": json.dumps(data), "content_type": probe.content_type}
    elif data is not None:
        path = probe.path(w)
        kwargs = {"data": json.dumps(data), "content_type": "application/json"} if path.startswith(
            ("/api/", "/v3/")
        ) else {"data": data}  # fmt: skip
    with transaction.atomic():
        response = getattr(client, probe.method)(probe.path(w), **kwargs)
        if probe.done is not None:
            allowed = probe.done(w, user)
        elif response.status_code == 302:
            allowed = not response["Location"].startswith("/login")
        else:
            allowed = response.status_code == 200
        transaction.set_rollback(True)
    return allowed, response.status_code


@pytest.mark.parametrize("who", WHO)
def test_the_screens_never_allow_what_the_api_refuses(w, who):
    user = w.people[who] if who else AnonymousUser()
    results: dict[str, dict[str, list[tuple[bool, str, int]]]] = {"screen": {}, "api": {}}
    problems: list[str] = []
    for surface, table in (("screen", SCREENS), ("api", API)):
        for name, probes in table.items():
            for probe in probes:
                client = Client()
                if who:
                    client.force_login(user)
                allowed, status = run(client, w, user, probe)
                where = f"{surface} {probe.method.upper()} {probe.path(w)} ({name})"
                if status >= 500:
                    problems.append(f"{where}: {status}")
                if who is None and allowed and not probe.public:
                    problems.append(f"{where}: anonymous allowed to {probe.action}")
                results[surface].setdefault(probe.action, []).append((allowed, where, status))
    for action, outcomes in results["screen"].items():
        for allowed, where, _status in outcomes:
            if not allowed:
                continue
            if action in results["api"]:
                refused = [f"{w_} ({s})" for a, w_, s in results["api"][action] if not a]
                if refused:
                    problems.append(f"{where} allows {action!r}; the API refuses it: {', '.join(refused)}")
            elif action in SCREEN_ONLY and not SCREEN_ONLY[action](w, user):
                problems.append(f"{where} allows {action!r}, which the access rule refuses")
    # And the screen-only rules hold the other way too: what the rule allows, the screen does.
    for action, rule in SCREEN_ONLY.items():
        outcomes = results["screen"].get(action, [])
        if outcomes and rule(w, user) and not any(a for a, _, _ in outcomes):
            problems.append(f"the screens refuse {action!r}, which the access rule allows: {outcomes}")
    assert not problems, f"as {who}:\n" + "\n".join(problems)


# What each kind of user may do, on both surfaces: the written rules, spelt out for the actions they change.
EXPECTED = {
    "integration.delete": {"admin"},
    "integration.owner": {"admin"},
    "integration.workflow": {"admin"},
    "resource.owner": {"admin", "owner"},
    "resource.workflow": {"admin", "owner"},
    "role.workflow": {"admin", "owner"},
    "resource.tags": {"admin", "owner", "maintainer"},
    # Managers of the integration, but nobody links an account to themselves or owns a service account they
    # mark: the owner is the one linked, the maintainer the one made owner.
    "account.link": {"admin", "maintainer"},
    "account.unlink": {"admin", "owner", "maintainer"},
    "account.service": {"admin", "owner"},
    "integration.rename": {"admin", "owner", "maintainer"},
    "rule.create": {"admin"},
    "workflow.create": {"admin"},
    # People: admins see everybody, others themselves and their direct reports.
    "person.read": {"admin", "member", "manager"},
    "person.read.other": {"admin", "owner"},
    "person.update": {"admin"},
    # Identity sources: admins only, on both surfaces.
    "identity_source.list": {"admin"},
    "identity_source.read": {"admin"},
    "identity_source.create": {"admin"},
    "identity_source.apply": {"admin"},
    "identity_source.confirm": {"admin"},
    "identity_source.discard": {"admin"},
}


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_who_may_change_owners_workflows_and_delete(w, action):
    checked = 0
    for surface, table in (("screen", SCREENS), ("api", API)):
        for name, probes in table.items():
            for probe in (p for p in probes if p.action == action):
                checked += 1
                for who in WHO:
                    user = w.people[who] if who else AnonymousUser()
                    client = Client()
                    if who:
                        client.force_login(user)
                    allowed, status = run(client, w, user, probe)
                    assert allowed == (who in EXPECTED[action]), (surface, name, probe.method, who, status)
    assert checked, f"no probe does {action}"  # a renamed action must not pass unchecked


# Writes an admin may not do either: another user's token, and approving what they are not an approver of.
NOT_FOR_ADMINS = {"token.revoke", "request.approve", "request.deny"}


def test_the_probes_write_for_whoever_may(w):
    """The payloads are valid: an admin's writes happen (all but ``NOT_FOR_ADMINS``), and so do the member's
    and the manager's own: revoking the member's token, approving the request waiting for the manager."""
    expected = {("member", "token.revoke"), ("manager", "request.approve"), ("manager", "request.deny")}
    for surface, table in (("screen", SCREENS), ("api", API)):
        for name, probes in table.items():
            for probe in (p for p in probes if p.done is not None):
                cases = [("admin", probe.action not in NOT_FOR_ADMINS)]
                cases += [(who, True) for who, action in expected if action == probe.action]
                for who, allowed_expected in cases:
                    client = Client()
                    client.force_login(w.people[who])
                    allowed, status = run(client, w, w.people[who], probe)
                    assert allowed == allowed_expected, (surface, name, probe.action, who, status)
