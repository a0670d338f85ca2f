"""The person form of the screens: it reads input; the service (``person_update``) validates the person whole
(no manager cycle, dates in order, a unique employee id) and makes the change."""

from __future__ import annotations

import json

from django import forms
from django.contrib.auth import get_user_model

from integrations.models import Integration
from integrations.screens.common import parse_json

from ..models import Person
from ..services import PERSON_FIELDS, USER_FIELDS


class PersonForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    display_name = forms.CharField(max_length=200, required=False, help_text="Empty: first and last name.")
    email = forms.EmailField(required=False)
    employee_id = forms.CharField(max_length=64, required=False, label="Employee id")
    department = forms.CharField(max_length=120, required=False)
    title = forms.CharField(max_length=120, required=False)
    manager = forms.CharField(
        max_length=150, required=False, help_text="Their manager's username; empty: none."
    )
    location = forms.CharField(max_length=120, required=False)
    status = forms.ChoiceField(choices=Person.Status.choices)
    start_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    source = forms.ModelChoiceField(
        queryset=Integration.objects.order_by("name"), required=False, empty_label="— kept in the portal —",
        label="Identity source",
    )  # fmt: skip
    attributes = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="A JSON object; empty: none."
    )

    @classmethod
    def initial_for(cls, person: Person) -> dict:
        user = person.user
        initial = {name: getattr(user, name) for name in USER_FIELDS if name != "manager"}
        initial |= {
            name: getattr(person, name) for name in PERSON_FIELDS if name not in ("attributes", "source")
        }
        manager = user.manager
        return initial | {
            "manager": manager.username if manager else "",
            "source": person.source_id,
            "attributes": json.dumps(person.attributes, indent=2, sort_keys=True)
            if person.attributes
            else "",
        }

    def clean_manager(self):
        username = self.cleaned_data["manager"].strip()
        if not username:
            return None
        manager = get_user_model().objects.filter(username=username).first()
        if manager is None:
            raise forms.ValidationError(f"No user named {username!r}.")
        return manager

    def clean_attributes(self):
        return parse_json(self.cleaned_data["attributes"], what="attributes")
