"""Approval workflows: list, create, edit (ordered rules, each with ordered steps of approvers), delete.

The editor is one form. Its rows are named by position — ``rules-0-max_duration``,
``rules-0-groups``, ``rules-0-steps-1-mode``, ``rules-0-steps-1-approvers-2-kind|user|group`` — and
its buttons (``op``: add, remove or move a rule, a step or an approver) re-render it without saving,
so nothing typed is lost; "Save" hands the whole list to the workflow services, which validate it
fully and write it in one audited transaction. Admins only.
"""

from __future__ import annotations

import re
from collections import defaultdict

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404, redirect, render

from governance.inputs import parse_id

from .. import hooks
from ..durations import Duration
from ..models import ApprovalRule, ApprovalStep, ApprovalWorkflow, Approver
from ..selectors import workflow_usage
from ..services import workflows as services
from .common import require_admin, style_form, toast

KINDS = Approver.Kind.choices
ROW = re.compile(r"^rules-(\d+)-(?:steps-(\d+)-(?:approvers-(\d+)-)?)?(\w+)$")


class WorkflowForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class DeleteForm(forms.Form):
    move_to = forms.ChoiceField(
        required=False,
        label="Move what uses it to",
        help_text="Integrations, resources and roles that name this workflow get the one chosen here.",
    )

    def __init__(self, *args, workflow, **kwargs):
        super().__init__(*args, **kwargs)
        others = ApprovalWorkflow.objects.exclude(pk=workflow.pk).values_list("pk", "name")
        self.fields["move_to"].choices = [
            ("", "— choose —"),
            *[(str(pk), name) for pk, name in others],
            ("inherit", "No workflow of their own (inherit; integrations get none)"),
        ]
        style_form(self)


# -- the editor's state: nested dicts, from a workflow or from the posted form ----------------------------------


def _approver(kind="owner", user="", group="") -> dict:
    return {"kind": kind, "user": user, "group": str(group or ""), "errors": {}}


def _step(mode="any", approvers=None) -> dict:
    return {"mode": mode, "approvers": approvers or [_approver()], "errors": {}}


def _rule(max_duration="", groups=(), steps=None) -> dict:
    return {
        "max_duration": max_duration,
        "groups": [str(g) for g in groups],
        "steps": steps or [_step()],
        "errors": {},
    }


def state_of(workflow: ApprovalWorkflow | None) -> list[dict]:
    if workflow is None:
        return [_rule(steps=[_step(approvers=[_approver("manager")])])]
    rules = workflow.rules.order_by("position").prefetch_related(
        "requester_groups",
        Prefetch(
            "steps",
            queryset=ApprovalStep.objects.order_by("position").prefetch_related(
                Prefetch("approvers", queryset=Approver.objects.order_by("pk").select_related("user"))
            ),
        ),
    )
    return [
        _rule(
            rule.max_duration,
            [g.pk for g in rule.requester_groups.all()],
            [
                _step(
                    step.mode,
                    [
                        _approver(a.kind, a.user.username if a.user else "", a.group_id)
                        for a in step.approvers.all()
                    ],
                )
                for step in rule.steps.all()
            ],
        )
        for rule in rules
    ]


def state_from_post(post) -> list[dict]:
    """The rules as posted, in position order; missing rows come out empty."""
    tree: dict = defaultdict(
        lambda: {"fields": {}, "steps": defaultdict(lambda: {"fields": {}, "approvers": {}})}
    )
    for key in post:
        m = ROW.match(key)
        if not m:
            continue
        r, s, a, name = m.groups()
        value = post.getlist(key) if name == "groups" else post.get(key, "")
        rule = tree[int(r)]
        if s is None:
            rule["fields"][name] = value
        elif a is None:
            rule["steps"][int(s)]["fields"][name] = value
        else:
            rule["steps"][int(s)]["approvers"].setdefault(int(a), {})[name] = value
    rules = []
    for r in sorted(tree):
        rule = tree[r]
        steps = []
        for s in sorted(rule["steps"]):
            step = rule["steps"][s]
            approvers = [
                _approver(f.get("kind", ""), f.get("user", "").strip(), f.get("group", ""))
                for _, f in sorted(step["approvers"].items())
            ]
            steps.append({"mode": step["fields"].get("mode", "any"), "approvers": approvers, "errors": {}})
        rules.append(
            {
                "max_duration": rule["fields"].get("max_duration", ""),
                "groups": [g for g in rule["fields"].get("groups", []) if g],
                "steps": steps,
                "errors": {},
            }
        )
    return rules


def apply_op(rules: list[dict], op: str) -> None:
    """Edit the state as a button asks: ``add-rule``, ``add-step-R``, ``remove-approver-R-S-A``, ``up-step-R-S``…"""
    verb, _, where = op.partition("-")
    what, *idx = where.split("-")
    try:
        path = [int(i) for i in idx]
    except ValueError:
        return
    if what == "rule":
        items, new = rules, lambda: _rule()
    elif what == "step" and len(path) >= 1 and path[0] < len(rules):
        items, new = rules[path[0]]["steps"], lambda: _step()
        path = path[1:]
    elif (
        what == "approver"
        and len(path) >= 2
        and path[0] < len(rules)
        and path[1] < len(rules[path[0]]["steps"])
    ):
        items, new = rules[path[0]]["steps"][path[1]]["approvers"], lambda: _approver()
        path = path[2:]
    else:
        return
    if verb == "add":
        items.append(new())
    elif verb == "remove" and path and path[0] < len(items):
        del items[path[0]]
    elif verb == "up" and path and 0 < path[0] < len(items):
        items[path[0] - 1], items[path[0]] = items[path[0]], items[path[0] - 1]


def to_service(rules: list[dict]) -> tuple[list[dict], dict[str, list[str]]]:
    """The rules as the services take them, with users and groups looked up; unknown ones are errors."""
    usernames = {a["user"] for r in rules for s in r["steps"] for a in s["approvers"] if a["user"]}
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames, is_active=True)}
    group_ids = {g for r in rules for g in r["groups"]} | {
        a["group"] for r in rules for s in r["steps"] for a in s["approvers"] if a["group"]
    }
    groups = {
        str(g.pk): g for g in Group.objects.filter(pk__in=[pk for pk in map(parse_id, group_ids) if pk])
    }
    errors: dict[str, list[str]] = {}
    out = []
    for i, rule in enumerate(rules):
        if any(g not in groups for g in rule["groups"]):
            errors[f"rules.{i}.requester_groups"] = ["Unknown group."]
        steps = []
        for j, step in enumerate(rule["steps"]):
            approvers = []
            for k, a in enumerate(step["approvers"]):
                if not a["kind"]:
                    continue  # an empty row
                user = group = None
                if a["kind"] == Approver.Kind.USER:
                    user = users.get(a["user"])
                    if user is None:
                        key = f"rules.{i}.steps.{j}.approvers.{k}.user"
                        errors[key] = [
                            f"No active user named {a['user']!r}." if a["user"] else "Name the user."
                        ]
                elif a["kind"] == Approver.Kind.GROUP:
                    group = groups.get(a["group"])
                approvers.append({"kind": a["kind"], "user": user, "group": group, "_row": k})
            steps.append({"mode": step["mode"], "approvers": approvers})
        out.append(
            {
                "max_duration": rule["max_duration"],
                "requester_groups": [groups[g] for g in rule["groups"] if g in groups],
                "steps": steps,
            }
        )
    return out, errors


def _row_key(key: str, rules_in: list[dict]) -> str:
    """A service error's key names approvers by their position among non-empty rows: map it to the form's row."""
    m = re.match(r"^rules\.(\d+)\.steps\.(\d+)\.approvers\.(\d+)(.*)$", key)
    if not m:
        return key
    i, j, k, rest = int(m[1]), int(m[2]), int(m[3]), m[4]
    try:
        row = rules_in[i]["steps"][j]["approvers"][k]["_row"]
    except (IndexError, KeyError):
        return key
    return f"rules.{i}.steps.{j}.approvers.{row}{rest}"


def place_errors(rules: list[dict], errors: dict[str, list[str]]) -> list[str]:
    """Hang each error on its rule, step or approver row; returns those that belong to none."""
    loose = []
    for key, messages in errors.items():
        parts = key.split(".")
        try:
            if parts[0] != "rules" or len(parts) < 3:
                raise LookupError
            rule = rules[int(parts[1])]
            if parts[2] != "steps" or len(parts) == 3:
                rule["errors"].setdefault(parts[2], []).extend(messages)
                continue
            step = rule["steps"][int(parts[3])]
            if len(parts) <= 5:
                step["errors"].setdefault(parts[4] if len(parts) == 5 else "general", []).extend(messages)
                continue
            approver = step["approvers"][int(parts[5])]
            approver["errors"].setdefault(parts[6] if len(parts) > 6 else "general", []).extend(messages)
        except (LookupError, ValueError):
            loose.extend(messages)
    return loose


# -- screens ----------------------------------------------------------------------------------------------------


# What rules_summary reads, in four queries however many rules, steps and approvers there are.
RULES_PREFETCH = Prefetch(
    "rules",
    queryset=ApprovalRule.objects.order_by("position").prefetch_related(
        "requester_groups",
        Prefetch(
            "steps",
            queryset=ApprovalStep.objects.order_by("position").prefetch_related(
                "approvers__user", "approvers__group"
            ),
        ),
    ),
)


def rules_summary(workflow: ApprovalWorkflow) -> list[dict]:
    """The workflow's rules in words; prefetch RULES_PREFETCH first (see workflow_list)."""
    out = []
    for rule in workflow.rules.all():
        steps = [
            f"{'Any' if step.mode == 'any' else 'All'} of "
            + (", ".join(str(a) for a in step.approvers.all()) or "nobody")
            for step in rule.steps.all()
        ]
        out.append({"when": rule.describe(), "steps": steps})
    return out


@login_required
def workflow_list(request):
    require_admin(request)
    workflows = ApprovalWorkflow.objects.annotate(
        n_integrations=Count("integrations", distinct=True),
        n_resources=Count("resources", distinct=True),
        n_roles=Count("roles", distinct=True),
    ).prefetch_related(RULES_PREFETCH)
    rows = [(w, rules_summary(w)) for w in workflows]
    return render(request, "workflows/list.html", {"nav": "workflows", "rows": rows})


class _Rollback(Exception):
    pass


def _save(request, workflow, form, rules) -> ApprovalWorkflow | list[str]:
    """Save through the services; on errors, hang them on the form and the rows and return the loose ones."""
    payload, lookup_errors = to_service(rules)
    errors: dict[str, list[str]] = {}
    try:
        with transaction.atomic():
            if workflow is None:
                saved = services.workflow_create(actor=request.user, rules=payload, **form.cleaned_data)
            else:
                saved = services.workflow_update(
                    actor=request.user, workflow=workflow, rules=payload, **form.cleaned_data
                )
            if lookup_errors:  # a user or group that does not exist (any more): write nothing
                raise _Rollback
        return saved
    except _Rollback:
        pass
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            errors = {_row_key(k, payload): v for k, v in exc.message_dict.items()}
        else:
            errors = {"__all__": exc.messages}
    if workflow is not None:
        workflow.refresh_from_db()
    errors.update(lookup_errors)
    for name in ("name", "description"):
        if name in errors:
            form.add_error(name, errors.pop(name))
    return place_errors(rules, errors)


def _editor(request, workflow: ApprovalWorkflow | None):
    if request.method == "POST":
        form = style_form(WorkflowForm(request.POST))
        rules = state_from_post(request.POST)
        op = request.POST.get("op", "")
        loose: list[str] = []
        if op:  # re-shown as typed, without errors: nothing is saved yet
            apply_op(rules, op)
            form = style_form(WorkflowForm(initial={k: request.POST.get(k, "") for k in form.fields}))
        else:
            valid = form.is_valid()
            if not rules:
                loose = ["Add at least one rule: a workflow without rules accepts no request."]
            elif valid:
                saved = _save(request, workflow, form, rules)
                if isinstance(saved, ApprovalWorkflow):
                    toast(request, f"Workflow {saved.name} saved.")
                    return redirect("integrations:workflows")
                loose = saved
        status = 200 if op else 400
    else:
        initial = {"name": workflow.name, "description": workflow.description} if workflow else {}
        form = style_form(WorkflowForm(initial=initial))
        rules, loose, status = state_of(workflow), [], 200
    context = {
        "nav": "workflows",
        "workflow": workflow,
        "form": form,
        "rules": rules,
        "loose_errors": loose,
        "durations": Duration.choices,
        "kinds": KINDS,
        "groups": Group.objects.order_by("name").values_list("pk", "name"),
        "usernames": get_user_model()
        .objects.filter(is_active=True)
        .order_by("username")
        .values_list("username", flat=True),
        "usage": _usage(workflow) if workflow else None,
    }
    return render(request, "workflows/form.html", context, status=status)


def _usage(workflow: ApprovalWorkflow) -> dict:
    usage = workflow_usage(workflow)
    return {
        "integrations": list(usage["integrations"][:10]),
        "resources": list(usage["resources"][:10]),
        "roles": list(usage["roles"][:10]),
        "counts": {k: q.count() for k, q in usage.items()},
        "pending": sum(hooks.workflow_pending_requests(workflow)),
    }


@login_required
def workflow_create(request):
    require_admin(request)
    return _editor(request, None)


@login_required
def workflow_edit(request, pk: int):
    require_admin(request)
    return _editor(request, get_object_or_404(ApprovalWorkflow, pk=pk))


@login_required
def workflow_delete(request, pk: int):
    require_admin(request)
    workflow = get_object_or_404(ApprovalWorkflow, pk=pk)
    usage = _usage(workflow)
    in_use = any(usage["counts"].values())
    form = DeleteForm(request.POST or None, workflow=workflow)
    if request.method == "POST" and form.is_valid():
        choice = form.cleaned_data["move_to"]
        if in_use and not choice:
            form.add_error("move_to", "It is in use: choose where what uses it goes.")
        else:
            move_to = services.REFUSE
            if choice == "inherit":
                move_to = None
            elif choice:
                move_to = ApprovalWorkflow.objects.get(pk=int(choice))
            try:
                moved = services.workflow_delete(actor=request.user, workflow=workflow, move_to=move_to)
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                n = sum(moved.values())
                toast(
                    request, f"Workflow {workflow.name} deleted" + (f"; {n} object(s) moved." if n else ".")
                )
                return redirect("integrations:workflows")
    return render(
        request,
        "workflows/delete.html",
        {"nav": "workflows", "workflow": workflow, "usage": usage, "in_use": in_use, "form": form},
        status=400 if form.errors else 200,
    )
