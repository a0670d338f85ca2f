"""Accounts: the list (who holds each one; the uncorrelated ones) and an account's page, where a manager
links it to a person or to nobody, or marks it a service account with its owner.

Who may do that is ``rights.account_link_refusal`` / ``rights.account_service_refusal``, asked by the
services the forms call (and by the API): the page shows a manager's own account without the forms.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from governance.models import AuditEvent

from ..models import Account, Permission
from ..rights import account_link_refusal
from ..services.accounts import account_link, account_set_service
from .common import get_managed, require_manager, style_form
from .forms import AccountLinkForm, ServiceAccountForm
from .pages import ObjectPage, list_table

PERMISSIONS_SHOWN = 50


@login_required
def account_list(request):
    require_manager(request)
    filterset, table = list_table(request, "accounts", empty_text="No account matches these filters.")
    return render(
        request,
        "accounts/list.html",
        {"table": table, "filter": filterset, "nav": "accounts", "title": "Accounts"},
    )


def _account(request, pk: int) -> Account:
    return get_managed(request, Account.objects.select_related("integration", "user", "owner"), pk=pk)


def account_context(request, account: Account, **extra) -> dict:
    live = Permission.objects.filter(account=account, ended_at=None)
    return {
        "account": account,
        "integration": account.integration,
        "nav": "accounts",
        "permissions": live.select_related("role__resource").order_by(
            "role__resource__name", "role__name", "pk"
        )[:PERMISSIONS_SHOWN],
        "permissions_total": live.count(),
        # Set when the asking manager may not change who holds it at all (their own account).
        "holder_refusal": account_link_refusal(request.user, account, None),
        "link_form": style_form(AccountLinkForm(initial={"user": account.user_id})),
        "service_form": style_form(ServiceAccountForm(initial={"owner": account.owner_id})),
        "events": AuditEvent.objects.filter(
            object_type__app_label="integrations", object_type__model="account", object_id=str(account.pk)
        )[:15],
        "section": None,
        **extra,
    }


ACCOUNT = ObjectPage("accounts/account.html", "integrations:account", _account, account_context)

account_detail = ACCOUNT.detail()

account_link_view = ACCOUNT.section(
    AccountLinkForm,
    "link",
    save=lambda actor, obj, data: account_link(actor=actor, account=obj, user=data["user"]),
    message=lambda obj, data: f"{obj} is now held by {data['user']}."
    if data["user"]
    else f"{obj} is held by nobody.",
    refusals_on_form=True,
)

account_service_view = ACCOUNT.section(
    ServiceAccountForm,
    "service",
    save=lambda actor, obj, data: account_set_service(actor=actor, account=obj, owner=data["owner"]),
    message=lambda obj, data: (
        f"{obj} is a service account owned by {data['owner']}."
        if data["owner"]
        else f"{obj} is a personal account; the next sync may link it by its email."
    ),
    refusals_on_form=True,
)
