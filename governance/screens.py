"""The signed-in user's own screens: personal API tokens (create, shown once; revoke)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import ApiToken
from .tokens import api_token_create, api_token_revoke


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. terraform or the nightly export.",
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "terraform"}),
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        help_text="Empty: the longest allowed (API_TOKEN_MAX_DAYS, 365 days by default). In UTC.",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "class": "form-control"}),
    )


@login_required
def tokens(request):
    """The caller's tokens; a POST creates one and shows it on this response only."""
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = api_token_create(
                actor=request.user, name=form.cleaned_data["name"], expires_at=form.cleaned_data["expires_at"]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = TokenForm()
    rows = ApiToken.objects.filter(user=request.user).order_by("-created_at", "-id")
    response = render(
        request,
        "account/tokens.html",
        {"nav": "tokens", "form": form, "tokens": rows, "created": created},
        status=400 if form.errors else 200,
    )
    if created:
        response["Cache-Control"] = "no-store"  # the token must not linger in any cache
    return response


@login_required
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # another user's token: not found
    api_token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token {token.name} ({token.prefix}) revoked: it no longer works.")
    return redirect("tokens")
