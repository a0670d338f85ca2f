"""What every screen shares: access checks, form styling, errors from services, toasts, JSON input."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404

from ..access import can_manage, is_admin, manageable_integrations, manageable_resources


def require_admin(request) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Only administrators can open this page.")


def require_manager(request) -> None:
    """Admins, and owners or maintainers of at least one integration or resource."""
    if is_admin(request.user):
        return
    if not manageable_resources(request.user).exists():
        raise PermissionDenied("You do not own or maintain any integration or resource.")


def manages_integrations(user) -> bool:
    return is_admin(user) or manageable_integrations(user).exists()


def get_managed(request, queryset, **lookup):
    """The object, 404 if it does not exist, 403 if the user may not manage it."""
    obj = get_object_or_404(queryset, **lookup)
    if not can_manage(request.user, obj):
        raise PermissionDenied("You do not own or maintain this.")
    return obj


# Filters whose choices can run into the hundred thousands: set by links, not picked from a list.
HIDDEN_FILTERS = ("resource", "account", "role")


def style_filter(filterset):
    """A FilterSet's form, styled, with its huge choice fields hidden."""
    for name in HIDDEN_FILTERS:
        if name in filterset.form.fields:
            filterset.form.fields[name].widget = forms.HiddenInput()
    style_form(filterset.form)
    return filterset


def style_form(form: forms.BaseForm) -> forms.BaseForm:
    """Tabler classes on every widget."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, (forms.CheckboxInput, forms.CheckboxSelectMultiple, forms.RadioSelect)):
            widget.attrs.setdefault("class", "form-check-input")
            continue
        css = "form-select" if isinstance(widget, forms.Select) else "form-control"
        widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()
    return form


def add_errors(form: forms.BaseForm, exc: ValidationError, rename: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError on the form, on the named fields where the form has them."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            name = (rename or {}).get(field, field)
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def parse_json(text: str, *, what: str = "JSON", expect=dict):
    """Parse JSON typed by an admin; errors name the line and column."""
    text = (text or "").strip()
    if not text:
        return expect()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"Invalid {what} at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    if not isinstance(value, expect):
        kind = "an object ({...})" if expect is dict else "a list ([...])"
        raise ValidationError(f"The {what} must be {kind}.")
    return value


def toast(request, message: str, level: str = "success") -> None:
    getattr(messages, level)(request, message)
