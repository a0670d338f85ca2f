"""Manage Rules: list, create, edit, enable/disable, delete, preview and apply."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from governance.inputs import parse_id

from .. import validators
from ..models import Integration, Rule
from ..services import rules as rule_services
from ..services.changes import describe
from .common import require_admin, style_form, toast
from .forms import ChangeSetForm, RuleForm

BLANK_ROWS = 2


def _conditions_from_post(post) -> list[dict]:
    rows = zip(
        post.getlist("cond_field"),
        post.getlist("cond_op"),
        post.getlist("cond_key"),
        post.getlist("cond_value"),
        strict=False,
    )
    out = []
    for field, op, key, value in rows:
        if not field:
            continue
        cond = {"field": field, "op": op, "value": value}
        if field == "attribute":
            cond["key"] = key
        out.append(cond)
    return out


def _display_rows(conditions) -> list[dict]:
    """Conditions as the form shows them: integrations and owners by name."""
    names = {
        "integration": dict(Integration.objects.values_list("pk", "name")),
        "owner": dict(get_user_model().objects.values_list("pk", "username")),
    }
    rows = []
    for cond in conditions:
        value = cond.get("value", "")
        if cond.get("field") in names and parse_id(value) is not None:
            value = names[cond["field"]].get(parse_id(value), value)
        rows.append({**cond, "value": "" if value is None else value})
    return rows


def _form_context(rule_form, change_form, conditions, rule=None, errors=None) -> dict:
    rows = _display_rows(conditions) + [{}] * BLANK_ROWS
    return {
        "form": rule_form,
        "changes": change_form,
        "rows": rows,
        "rule": rule,
        "fields": validators.FIELD_LABELS,
        "ops": validators.OP_LABELS,
        "field_ops": {k: list(v) for k, v in validators.CONDITION_FIELDS.items()},
        "integrations": Integration.objects.order_by("name").values_list("pk", "name"),
        "users": get_user_model()
        .objects.filter(is_active=True)
        .order_by("username")
        .values_list("pk", "username"),
        "condition_errors": errors or [],
        "nav": "rules",
    }


@login_required
def rule_list(request):
    require_admin(request)
    rules = [
        (
            rule,
            [rule_services.describe_condition(c) for c in rule.conditions],
            describe(rule.actions),
        )
        for rule in Rule.objects.all()
    ]
    return render(request, "rules/list.html", {"rules": rules, "nav": "rules"})


def _save(request, rule: Rule | None):
    form = style_form(RuleForm(request.POST))
    change_form = style_form(ChangeSetForm(request.POST, prefix="c"))
    conditions = _conditions_from_post(request.POST)
    condition_errors: list[str] = []
    if form.is_valid() and change_form.is_valid():
        fields = {**form.cleaned_data, "conditions": conditions, "actions": change_form.changes()}
        try:
            if rule is None:
                rule = rule_services.rule_create(actor=request.user, **fields)
            else:
                rule = rule_services.rule_update(actor=request.user, rule=rule, **fields)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                if key == "conditions":
                    condition_errors.extend(messages)
                elif key == "actions" or key in ChangeSetForm.ACTIONS:
                    change_form.add_error(None, messages)
                else:
                    form.add_error(key if key in form.fields else None, messages)
        else:
            toast(request, f"Rule {rule.name} saved.")
            if rule.scope == Rule.Scope.EXISTING_AND_NEW and rule.enabled:
                return redirect("integrations:rule-preview", pk=rule.pk)
            return redirect("integrations:rules")
    return render(
        request,
        "rules/form.html",
        _form_context(form, change_form, conditions, rule, condition_errors),
        status=400,
    )


@login_required
def rule_create(request):
    require_admin(request)
    if request.method == "POST":
        return _save(request, None)
    form = style_form(
        RuleForm(
            initial={
                "target": "resources",
                "scope": Rule.Scope.EXISTING_AND_NEW,
                "enabled": True,
                "position": 100,
            }
        )
    )
    return render(request, "rules/form.html", _form_context(form, style_form(ChangeSetForm(prefix="c")), []))


@login_required
def rule_edit(request, pk: int):
    require_admin(request)
    rule = get_object_or_404(Rule, pk=pk)
    if request.method == "POST":
        return _save(request, rule)
    form = style_form(
        RuleForm(
            initial={
                f: getattr(rule, f)
                for f in ("name", "description", "target", "match", "scope", "enabled", "position")
            }
        )
    )
    changes = style_form(ChangeSetForm(prefix="c", initial=ChangeSetForm.initial_from(rule.actions)))
    return render(request, "rules/form.html", _form_context(form, changes, rule.conditions, rule))


@login_required
@require_POST
def rule_toggle(request, pk: int):
    require_admin(request)
    rule = get_object_or_404(Rule, pk=pk)
    rule_services.rule_set_enabled(actor=request.user, rule=rule, enabled=not rule.enabled)
    toast(request, f"Rule {rule.name} {'enabled' if rule.enabled else 'disabled'}.")
    return redirect("integrations:rules")


@login_required
@require_POST
def rule_delete(request, pk: int):
    require_admin(request)
    rule = get_object_or_404(Rule, pk=pk)
    rule_services.rule_delete(actor=request.user, rule=rule)
    toast(request, f"Rule {rule.name} deleted.")
    return redirect("integrations:rules")


@login_required
def rule_preview(request, pk: int):
    require_admin(request)
    rule = get_object_or_404(Rule, pk=pk)
    preview = rule_services.rule_preview(rule)
    return render(
        request,
        "rules/preview.html",
        {
            "rule": rule,
            "preview": preview,
            "conditions": [rule_services.describe_condition(c) for c in rule.conditions],
            "actions": describe(rule.actions),
            "nav": "rules",
        },
    )


@login_required
@require_POST
def rule_apply(request, pk: int):
    require_admin(request)
    rule = get_object_or_404(Rule, pk=pk)
    try:
        changed = rule_services.rule_apply(actor=request.user, rule=rule)
    except ValidationError as exc:
        toast(request, " ".join(exc.messages), "error")
        return redirect("integrations:rule-preview", pk=rule.pk)
    toast(request, f"Rule {rule.name} applied: {changed} {rule.get_target_display().lower()} changed.")
    return redirect("integrations:rules")
