"""What every screen shares: access checks, form styling, errors from services, toasts, JSON input."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.http import url_has_allowed_host_and_scheme

from governance.inputs import InputError, load_json

from ..rights import can_manage, is_admin, manageable_integrations, manages_inventory


def require_admin(request) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Only administrators can open this page.")


def require_manager(request) -> None:
    """Admins, and owners or maintainers of at least one integration or resource."""
    if not manages_inventory(request.user):
        raise PermissionDenied("You do not own or maintain any integration or resource.")


def manages_integrations(user) -> bool:
    return is_admin(user) or manageable_integrations(user).exists()


def get_managed(request, queryset, **lookup):
    """The object, found as the API finds it: 403 for someone who manages nothing, 404 when it does not
    exist or the user may not manage it (whether it exists is not theirs to learn)."""
    require_manager(request)
    obj = get_object_or_404(queryset, **lookup)
    if not can_manage(request.user, obj):
        raise Http404("No such object.")
    return obj


def safe_next(request, default: str) -> str:
    """Where to go after a POST: its ``next`` when that is a path of this site, else ``default``. Never
    another site (``https://evil.example``, ``//evil.example``), a scheme (``javascript:``) or a bare word."""
    target = request.POST.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# Filters whose choices can run into the hundred thousands: set by links, not picked from a list.
HIDDEN_FILTERS = ("resource", "account", "role")


class OneOfMany(forms.SelectMultiple):
    """A multiple-choice filter shown as a dropdown: one value picked on the screen, "Any" first; a link
    may still carry several (``?integration=1&integration=2``)."""

    allow_multiple_selected = False

    def value_from_datadict(self, data, files, name):
        return [v for v in super().value_from_datadict(data, files, name) if v]


def style_filter(filterset):
    """A FilterSet's form, styled, with its huge choice fields hidden (also those the FilterSet names in
    ``hidden_on_screens``); an unset filter reads "Any"."""
    hidden = (*HIDDEN_FILTERS, *getattr(filterset, "hidden_on_screens", ()))
    for name, field in filterset.form.fields.items():
        if name in hidden:
            field.widget = forms.HiddenInput()
        elif isinstance(field.widget, forms.NullBooleanSelect):
            field.widget.choices = [("unknown", "Any"), ("true", "Yes"), ("false", "No")]
        elif isinstance(field, forms.MultipleChoiceField | forms.ModelMultipleChoiceField):
            # Iterated, not len()-ed: the choices' one query, no COUNT before it.
            field.widget = OneOfMany(choices=[("", "Any"), *(choice for choice in field.choices)])
        elif getattr(field, "empty_label", None) is not None:
            field.empty_label = "Any"
            field.widget.choices = field.choices  # the widget holds the choices made with the old label
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
        value = load_json(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"Invalid {what} at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    except InputError as exc:
        raise ValidationError(f"Invalid {what}: {exc}") from None
    if not isinstance(value, expect):
        kind = "an object ({...})" if expect is dict else "a list ([...])"
        raise ValidationError(f"The {what} must be {kind}.")
    return value


def toast(request, message: str, level: str = "success") -> None:
    getattr(messages, level)(request, message)
