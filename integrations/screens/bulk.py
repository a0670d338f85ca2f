"""Bulk Actions: choose objects with the list filters, some or all matching, choose a change, preview, apply."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from governance.inputs import load_json, parse_id
from governance.models import Job

from ..services.bulk import BACKGROUND_THRESHOLD, bulk_apply, bulk_start
from ..services.changes import describe
from ..validators import SUPPORTED, validate_changes
from .common import require_manager, style_form, toast
from .forms import ChangeSetForm
from .pages import LISTS, list_table

TARGETS = [target for target, spec in LISTS.items() if spec.bulk_table is not None]


def _target(value) -> str:
    if value not in TARGETS:
        raise Http404("Unknown bulk target.")
    return value


def _filter_params(query: QueryDict) -> QueryDict:
    """The filters of a query string: paging and sorting left out, and so are the empty values a
    submitted filter form carries for every field left at "Any" (``tags=&integration=``)."""
    params = query.copy()
    for key in ("target", "page", "per_page", "sort"):
        params.pop(key, None)
    for key in list(params):
        values = [v for v in params.getlist(key) if v.strip()]
        if values:
            params.setlist(key, values)
        else:
            del params[key]
    return params


def selection(user, target: str, query: str, scope: str, ids: list[str]) -> list[int]:
    """The ids a bulk action applies to: every object matching the filters, or the checked ones among them."""
    spec = LISTS[target]
    filterset = spec.filter_class(_filter_params(QueryDict(query)), queryset=spec.base(user))
    if not filterset.is_valid():
        raise ValidationError(
            "The filters are not valid: "
            + "; ".join(f"{k}: {' '.join(v)}" for k, v in filterset.errors.items())
        )
    qs = filterset.qs
    if scope != "all":
        wanted = [pk for pk in map(parse_id, ids) if pk is not None]
        qs = qs.filter(pk__in=wanted)
    return list(qs.order_by().values_list("pk", flat=True).distinct())


@login_required
def bulk(request):
    require_manager(request)
    target = _target(request.GET.get("target", "roles"))
    filterset, table = list_table(
        request,
        target,
        params=_filter_params(request.GET),
        bulk=True,
        empty_text="Nothing matches these filters.",
    )
    change_form = style_form(ChangeSetForm(prefix="c"))
    return render(
        request,
        "bulk/bulk.html",
        {
            "target": target,
            "targets": TARGETS,
            "filter": filterset,
            "table": table,
            "changes": change_form,
            "supported": SUPPORTED[target],
            "query": _filter_params(request.GET).urlencode(),
            "keep": [("target", target)],
            "nav": "bulk",
        },
    )


def _read_post(request):
    target = _target(request.POST.get("target"))
    change_form = style_form(ChangeSetForm(request.POST, prefix="c"))
    return target, change_form


@login_required
@require_POST
def bulk_preview(request):
    require_manager(request)
    target, change_form = _read_post(request)
    query, scope, ids = (
        request.POST.get("query", ""),
        request.POST.get("scope", "selected"),
        request.POST.getlist("ids"),
    )
    errors: list[str] = []
    selected: list[int] = []
    changes: dict = {}
    try:
        selected = selection(request.user, target, query, scope, ids)
    except ValidationError as exc:
        errors.extend(exc.messages)
    if not selected and not errors:
        errors.append("No objects are selected: nothing to change. Check some rows, or choose all matching.")
    if change_form.is_valid():
        try:
            changes = validate_changes(target, change_form.changes())
        except ValidationError as exc:
            errors.extend(
                f"{k}: {' '.join(v)}" if k != "actions" else " ".join(v) for k, v in exc.message_dict.items()
            )
    else:
        errors.extend(e for errs in change_form.errors.values() for e in errs)
    sample = LISTS[target].base(request.user).filter(pk__in=selected[:10])
    return render(
        request,
        "bulk/preview.html",
        {
            "target": target,
            "count": len(selected),
            "selected_text": f"{len(selected):,} {target if len(selected) != 1 else target[:-1]}",
            "sample": sample,
            "changes": changes,
            "changes_json": json.dumps(changes),
            "lines": describe(changes) if changes else [],
            "errors": errors,
            "query": query,
            "scope": scope,
            "ids": ids,
            "background": len(selected) > BACKGROUND_THRESHOLD,
            "threshold": BACKGROUND_THRESHOLD,
            "nav": "bulk",
        },
        status=400 if errors else 200,
    )


@login_required
@require_POST
def bulk_apply_view(request):
    require_manager(request)
    target = _target(request.POST.get("target"))
    query, scope, ids = (
        request.POST.get("query", ""),
        request.POST.get("scope", "selected"),
        request.POST.getlist("ids"),
    )
    back = reverse("integrations:bulk") + f"?target={target}&{query}"
    try:
        changes = load_json(request.POST.get("changes") or "{}")
        selected = selection(request.user, target, query, scope, ids)
        if len(selected) > BACKGROUND_THRESHOLD:
            job = bulk_start(actor=request.user, target=target, ids=selected, changes=changes)
            toast(request, f"Changing {len(selected):,} {target} in the background.")
            return redirect("integrations:job", pk=job.pk)
        changed = bulk_apply(actor=request.user, target=target, ids=selected, changes=changes)
    except (ValidationError, ValueError, PermissionDenied) as exc:
        toast(request, " ".join(getattr(exc, "messages", [str(exc)])), "error")
        return redirect(back)
    toast(request, f"{changed:,} of {len(selected):,} {target} changed.")
    return redirect(back)


@login_required
def job_detail(request, pk):
    require_manager(request)
    job = Job.objects.filter(pk=pk).first()
    if job is None or (job.created_by_id != request.user.pk and not request.user.is_staff):
        raise Http404("No such job.")
    template = "bulk/_job.html" if request.htmx else "bulk/job.html"
    return render(request, template, {"job": job, "nav": "bulk"})
