"""Who may see and change what. The screens and the API both ask here.

- Admins (staff or superusers) manage everything.
- An integration's owner and maintainers (users, or members of maintainer groups) manage
  that integration, its resources and roles.
- A resource's owner and maintainers manage that resource and its roles.
- Everyone else manages nothing (they see only what they may request and their own requests).

Narrower rules for what would let a manager widen their own rights:

- **Deleting an integration**: admins only (:func:`can_delete_integration`); so is stopping a deletion
  (:func:`can_cancel_job`: managers stop their integration's syncs, everyone the jobs they started).
- **Owner and approval workflow** (an integration's owner and default workflow, a resource's
  owner and workflow, a role's workflow): admins, and the owner of the integration for its
  resources and roles (:func:`policy_editable`, :func:`can_change_policy`). Never the object's
  own maintainers, never a resource's owner for their own resource, never an integration's owner
  for the integration itself. Rules and bulk actions that set an owner or a workflow follow it.
- **Prerequisites**: the roles chosen must be roles the actor manages, of the same integration
  as the integration, resource or role that requires them (:func:`prerequisite_roles`).
- **Who holds an account** (linking an account to a person or to nobody, marking it a service account
  and naming its owner): the managers of the account's integration (:func:`can_manage`), but nobody
  links an account to themselves, changes who holds an account linked to themselves (unlinking it, or
  making it a service account), or makes themselves the owner of a service account: another manager
  does (:func:`account_link_refusal`, :func:`account_service_refusal`). Owning a service account means
  answering for it — in reviews, for its access — so choosing oneself would be certifying one's own
  access; unlinking one's own account would hide it from what reviews one's own access.
- **Approving access**: nobody other than the beneficiary must approve when the beneficiary owns
  or maintains the role (its role, resource or integration) or changed its workflow recently
  (:func:`self_interested`); see ``access.services.requests``.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.utils import timezone

from governance.models import AuditEvent

from .models import Account, ApprovalWorkflow, Integration, Maintainer, Permission, Resource, Role


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def _maintains(user, prefix: str = "") -> Q:
    """Objects whose maintainers (reached through ``prefix``) include the user or one of their groups."""
    return Q(**{f"{prefix}maintainers__user": user}) | Q(
        **{f"{prefix}maintainers__group__in": user.groups.all()}
    )


def manageable_integrations(user) -> QuerySet[Integration]:
    if is_admin(user):
        return Integration.objects.all()
    if not (user and user.is_authenticated):
        return Integration.objects.none()
    ids = Integration.objects.filter(Q(owner=user) | _maintains(user)).values("pk")
    return Integration.objects.filter(pk__in=ids)


def manageable_resources(user) -> QuerySet[Resource]:
    if is_admin(user):
        return Resource.objects.all()
    if not (user and user.is_authenticated):
        return Resource.objects.none()
    own = Resource.objects.filter(Q(owner=user) | _maintains(user)).values("pk")
    return Resource.objects.filter(Q(integration__in=manageable_integrations(user)) | Q(pk__in=own))


def manageable_roles(user) -> QuerySet[Role]:
    if is_admin(user):
        return Role.objects.all()
    return Role.objects.filter(resource__in=manageable_resources(user))


def manageable_accounts(user) -> QuerySet[Account]:
    if is_admin(user):
        return Account.objects.all()
    return Account.objects.filter(integration__in=manageable_integrations(user))


def manageable_permissions(user) -> QuerySet[Permission]:
    if is_admin(user):
        return Permission.objects.all()
    return Permission.objects.filter(role__in=manageable_roles(user))


def manages_inventory(user) -> bool:
    """Admins, and owners or maintainers of at least one integration or resource: who sees the inventory."""
    if not (user and user.is_authenticated):
        return False
    return is_admin(user) or manageable_integrations(user).exists() or manageable_resources(user).exists()


def can_manage(user, obj) -> bool:
    """Whether ``user`` may see and change ``obj`` (an integration, resource, role, account or permission)."""
    if is_admin(user):
        return True
    querysets = {
        Integration: manageable_integrations,
        Resource: manageable_resources,
        Role: manageable_roles,
        Account: manageable_accounts,
        Permission: manageable_permissions,
    }
    for model, manageable in querysets.items():
        if isinstance(obj, model):
            return manageable(user).filter(pk=obj.pk).exists()
    return False


def can_delete_integration(user, integration: Integration) -> bool:
    """Deleting an integration (and its whole inventory) is for admins."""
    return is_admin(user)


def can_cancel_job(user, job) -> bool:
    """Stopping a job: admins; whoever started it; and for a sync, the managers of its integration. Not a
    deletion (only admins start those) nor someone else's bulk action."""
    if is_admin(user):
        return True
    if not (user and user.is_authenticated):
        return False
    if job.created_by_id == user.pk:
        return True
    return (
        job.kind == "sync"
        and job.integration_id is not None
        and manageable_integrations(user).filter(pk=job.integration_id).exists()
    )


ACCOUNT_MANAGERS_ONLY = "Only admins and the managers of its integration change who holds an account."


def _account_refusal(user, account: Account, chosen, *, chose_self: str, own: str) -> str:
    if not can_manage(user, account):
        return ACCOUNT_MANAGERS_ONLY
    if chosen is not None and chosen.pk == user.pk:
        return chose_self
    if account.user_id is not None and account.user_id == user.pk:
        return own
    return ""


def account_link_refusal(user, account: Account, holder) -> str:
    """Why ``user`` may not make ``holder`` (a user, or None: nobody) the holder of ``account``; '' when
    they may. Managers of its integration may, but not to themselves, nor for an account linked to them."""
    return _account_refusal(
        user,
        account,
        holder,
        chose_self="Nobody links an account to themselves: another manager of the integration does.",
        own="Nobody changes who holds their own account: another manager of the integration does.",
    )


def account_service_refusal(user, account: Account, owner) -> str:
    """Why ``user`` may not make ``account`` a service account owned by ``owner`` (None: no longer a service
    account); '' when they may. Managers of its integration may, but never naming themselves the owner,
    nor for an account linked to them."""
    return _account_refusal(
        user,
        account,
        owner,
        chose_self="Nobody makes themselves the owner of a service account: another manager of the integration "
        "does.",
        own="Nobody makes their own account a service account: another manager of the integration does.",
    )


# The field naming each object's approval workflow (attnames, as audited).
WORKFLOW_FIELDS = {Integration: "default_workflow_id", Resource: "workflow_id", Role: "workflow_id"}
# The fields deciding an object's owner and approval workflow, by model: also the integration's flag
# that lets its syncs set the owners the application recommends for its resources.
POLICY_FIELDS = {
    Integration: ("owner_id", "default_workflow_id", "auto_assign_recommended_owners"),
    Resource: ("owner_id", "workflow_id"),
    Role: ("workflow_id",),
}


def policy_editable(user, model) -> QuerySet:
    """The objects of ``model`` (Integration, Resource or Role) whose owner and approval workflow
    ``user`` may change: everything for admins; the resources and roles of the integrations the user
    owns; nothing else (not an integration itself, nor what one only maintains or owns below it)."""
    if is_admin(user):
        return model.objects.all()
    if model is Integration or not (user and user.is_authenticated):
        return model.objects.none()
    return model.objects.filter(integration__owner=user)


def can_change_policy(user, obj) -> bool:
    """Whether ``user`` may change the owner or approval workflow of ``obj``."""
    return policy_editable(user, type(obj)).filter(pk=obj.pk).exists()


def can_write_policy_rules(user) -> bool:
    """Rules that set owners or workflows reach every matching object, also those discovered later:
    only someone who may change the policy of everything (an admin) writes or applies them."""
    return is_admin(user)


def policy_changes(obj, fields: dict) -> list[str]:
    """The owner/workflow fields that ``fields`` (model field names → values) would change on ``obj``."""
    changed = []
    for attname in POLICY_FIELDS.get(type(obj), ()):
        name = attname.removesuffix("_id")
        if name in fields or attname in fields:
            value = fields.get(name, fields.get(attname))
            new = getattr(value, "pk", value)
            if new != getattr(obj, attname):
                changed.append(name)
    return changed


def prerequisite_roles(user, scope) -> QuerySet[Role]:
    """The roles ``user`` may make a prerequisite of ``scope`` (an integration, resource or role, or
    None for a form not bound to one yet): roles the user manages, of the scope's integration."""
    roles = manageable_roles(user).filter(removed_at=None)
    if scope is not None:
        integration_id = scope.pk if isinstance(scope, Integration) else scope.integration_id
        roles = roles.filter(integration_id=integration_id)
    return roles


WORKFLOW_CHANGE_WINDOW = timedelta(days=30)


def self_interested(user, role: Role) -> str:
    """Why ``user`` may not be the only one to decide on access to ``role`` ('' when nothing): they own
    or maintain the role's resource or integration, or in the last 30 days (read from the audit log)
    changed which approval workflow the role, its resource or its integration names, or edited one of
    those workflows."""
    if user is None or user.pk is None:
        return ""
    resource, integration = role.resource, role.integration
    if user.pk == integration.owner_id:
        return "owns the integration"
    if user.pk == resource.owner_id:
        return "owns the resource"
    maintains = Maintainer.objects.filter(
        Q(integration_id=integration.pk) | Q(resource_id=resource.pk)
    ).filter(Q(user=user) | Q(group__in=user.groups.all()))
    if maintains.exists():
        return "maintains the resource or integration"
    types = ContentType.objects.get_for_models(Integration, Resource, Role, ApprovalWorkflow)
    changed = Q()
    for model, pk in ((Integration, integration.pk), (Resource, resource.pk), (Role, role.pk)):
        changed |= Q(
            object_type=types[model], object_id=str(pk), details__changes__has_key=WORKFLOW_FIELDS[model]
        )
    # Or edited the steps of a workflow set on the role, its resource or its integration.
    workflows = {role.workflow_id, resource.workflow_id, integration.default_workflow_id} - {None}
    changed |= Q(object_type=types[ApprovalWorkflow], object_id__in=[str(pk) for pk in workflows])
    recent = AuditEvent.objects.filter(
        changed, actor_id=user.pk, occurred_at__gte=timezone.now() - WORKFLOW_CHANGE_WINDOW
    )
    if recent.exists():
        return "changed its approval workflow in the last 30 days"
    return ""
