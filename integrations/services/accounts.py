"""Who holds an account, decided by a person: link it to someone or to nobody, mark it a service account.

A sync links accounts by its correlation (the same email) only while nobody else decided
(``Account.SYNC_MANAGED``); what these services record is a person's decision (``link_source = "hand"``),
which later syncs keep. Who may decide is one rule each in :mod:`integrations.rights`
(:func:`~integrations.rights.account_link_refusal`, :func:`~integrations.rights.account_service_refusal`):
the managers of the account's integration, never about themselves. The person chosen must be an active
portal user.

A service account is held by no person: marking one clears its user and names the person answerable for
it (``owner``); the decision is a person's, so syncs leave it alone. Marking it a personal account again
clears the owner and hands the account back to the syncs' correlation (no link yet), unless a person
links it.

Each change is one named audit event — ``account.linked``, ``account.unlinked``,
``account.service_account`` — with who held it before and after (user ids, how it was linked, the
owner); the row is written with one UPDATE, so the model's generic ``account.update`` is not written too.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import audit
from governance.audit import audit_context

from ..models import Account
from ..rights import account_link_refusal, account_service_refusal

__all__ = ["account_link", "account_set_service"]

HOLDER_FIELDS = ("user_id", "link_source", "service_account", "owner_id")


def _check(refusal: str, chosen, field: str) -> None:
    """Refuse what the rule refuses (PermissionDenied), then a person who is not an active user."""
    if refusal:
        raise PermissionDenied(refusal)
    if chosen is not None and not chosen.is_active:
        raise ValidationError({field: f"{chosen} is not an active portal user: choose someone who is."})


def _locked(account: Account) -> Account:
    return Account.objects.select_for_update().select_related("integration").get(pk=account.pk)


def _holder(account: Account) -> dict:
    return {name: getattr(account, name) for name in HOLDER_FIELDS}


def _change(actor, account: Account, action: str, **fields) -> Account:
    """Write ``fields`` on the locked account and record ``action`` with who held it before and after."""
    before = _holder(account)
    after = {**before, **{f"{k}_id" if k in ("user", "owner") else k: _pk(v) for k, v in fields.items()}}
    if after == before:
        return account
    with audit_context(actor=actor):
        Account.objects.filter(pk=account.pk).update(**fields, updated_at=timezone.now())
        account.refresh_from_db()
        audit.record(action, obj=account, details={"before": before, "after": _holder(account)})
    return account


def _pk(value):
    return getattr(value, "pk", value)


def account_link(*, actor, account: Account, user) -> Account:
    """Link ``account`` to ``user`` (None: unlink it, to nobody), as a person's decision that syncs keep."""
    with transaction.atomic():
        account = _locked(account)
        _check(account_link_refusal(actor, account, user), user, "user")
        if user is not None and account.service_account:
            raise ValidationError(
                {
                    "user": f"{account} is a service account, held by no person: make it a personal account first."
                }
            )
        return _change(
            actor,
            account,
            "account.linked" if user is not None else "account.unlinked",
            user=user,
            link_source=Account.LinkSource.HAND,
        )


def account_set_service(*, actor, account: Account, owner) -> Account:
    """Make ``account`` a service account answered for by ``owner`` (held by no person: its user is cleared),
    or with ``owner`` None a personal account again (its link back to the syncs' correlation)."""
    with transaction.atomic():
        account = _locked(account)
        _check(account_service_refusal(actor, account, owner), owner, "owner")
        if owner is not None:
            fields = {
                "service_account": True,
                "owner": owner,
                "user": None,
                "link_source": Account.LinkSource.HAND,
            }
        elif account.service_account:
            fields = {"service_account": False, "owner": None, "link_source": Account.LinkSource.NONE}
        else:  # a personal account already
            fields = {}
        return _change(actor, account, "account.service_account", **fields)
