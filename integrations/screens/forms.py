"""Forms of the screens. They validate input; the services make the changes."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from ..durations import Duration
from ..models import Agent, ApprovalWorkflow, Integration, Resource, Role, Rule
from ..validators import ACTION_LABELS, SUPPORTED
from .common import parse_json


def _help(model, name: str) -> str:
    return str(model._meta.get_field(name).help_text)


def users():
    return get_user_model().objects.filter(is_active=True).order_by("username")


class DurationsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        kwargs.setdefault("choices", Duration.choices)
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Allowed durations")
        super().__init__(**kwargs)


FLAG_FIELDS = [
    "read_only",
    "allow_changing_account_permissions",
    "allow_creating_accounts",
    "requestable",
    "requestable_by_default",
    "auto_assign_recommended_owners",
    "auto_assign_recommended_maintainers",
    "notify_external_permission_changes",
]
FLAG_LABELS = {
    "read_only": "Read-only",
    "allow_changing_account_permissions": "Allow changing account permissions",
    "allow_creating_accounts": "Allow creating accounts",
    "requestable": "Requestable",
    "requestable_by_default": "Requestable by default",
    "auto_assign_recommended_owners": "Auto-assign recommended owners",
    "auto_assign_recommended_maintainers": "Auto-assign recommended maintainers",
    "notify_external_permission_changes": "Notify about external permission changes",
}


def _flag(name: str) -> forms.BooleanField:
    field = Integration._meta.get_field(name)
    return forms.BooleanField(
        required=False, initial=field.default, label=FLAG_LABELS[name], help_text=str(field.help_text)
    )


class IntegrationSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    owner = forms.ModelChoiceField(queryset=users(), required=False, empty_label="— no owner —")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in FLAG_FIELDS:
            self.fields[name] = _flag(name)
        self.fields["override_allowed_durations"] = forms.BooleanField(
            required=False,
            label="Override allowed durations",
            help_text=_help(Integration, "override_allowed_durations"),
        )
        self.fields["allowed_durations"] = DurationsField()

    @classmethod
    def initial_for(cls, integration: Integration) -> dict:
        fields = ["name", "owner", *FLAG_FIELDS, "override_allowed_durations", "allowed_durations"]
        return {f: getattr(integration, f) for f in fields}


class WorkflowForm(forms.Form):
    workflow = forms.ModelChoiceField(
        queryset=ApprovalWorkflow.objects.all(),
        required=False,
        empty_label="— inherit —",
        label="Approval workflow",
    )


class ConnectionForm(forms.Form):
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "class": "json-input", "spellcheck": "false"}),
        label="Connection (JSON)",
        help_text="Secret items are not shown; set a new value below, or leave them out to keep the stored one. "
        "Changing where the connection goes (URL, host, port, CA certificate, TLS, connection option) "
        "needs the secrets again.",
    )
    connector_attributes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "json-input", "spellcheck": "false"}),
        required=False,
        label="Connector attributes (JSON)",
        help_text='e.g. {"filterString": "department == \\"Legal\\"", "stateful": true}. Objects that match a filter are excluded.',
    )

    def __init__(self, *args, secret_keys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.secret_keys = list(secret_keys)
        for key in self.secret_keys:
            self.fields[f"secret__{key}"] = forms.CharField(
                required=False,
                label=f"New value of {key}",
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            )

    def clean_config(self):
        return parse_json(self.cleaned_data["config"], what="connection JSON")

    def clean_connector_attributes(self):
        return parse_json(self.cleaned_data["connector_attributes"], what="connector attributes JSON")

    def clean(self):
        """``connection_config``: the JSON with the new secret values typed (others keep the stored one)."""
        data = super().clean()
        if "config" in data:
            config = dict(data["config"])
            for key in self.secret_keys:
                if data.get(f"secret__{key}"):
                    config[key] = data[f"secret__{key}"]
            data["connection_config"] = config
        return data


class MaintainerForm(forms.Form):
    user = forms.ModelChoiceField(queryset=users(), required=False, empty_label="— a user —")
    group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"), required=False, empty_label="— or a group —"
    )

    def clean(self):
        data = super().clean()
        if bool(data.get("user")) == bool(data.get("group")):
            raise forms.ValidationError("Choose one user or one group.")
        return data


class AccountLinkForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=users(), required=False, empty_label="— nobody (unlink it) —", label="Held by"
    )


class ServiceAccountForm(forms.Form):
    owner = forms.ModelChoiceField(
        queryset=users(),
        required=False,
        empty_label="— not a service account —",
        label="Owner",
        help_text="The person answerable for this service account. No owner: a personal account again.",
    )


class PrerequisiteForm(forms.Form):
    """``roles``: the roles that may be chosen (``rights.prerequisite_roles`` of the user and scope)."""

    alternatives = forms.ModelMultipleChoiceField(
        queryset=Role.objects.none(),
        label="Roles (any one satisfies the prerequisite)",
        error_messages={"required": "Choose at least one role."},
    )

    def __init__(self, *args, roles=None, **kwargs):
        super().__init__(*args, **kwargs)
        if roles is not None:
            self.fields["alternatives"].queryset = roles


class TagsField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated, e.g. production, pii")
        super().__init__(max_length=2000, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        names = [n.strip() for n in value.split(",") if n.strip()]
        long = [n for n in names if len(n) > 100]
        if long:
            raise forms.ValidationError(f"A tag has at most 100 characters: {long[0][:30]}…")
        return names


class ResourceSettingsForm(forms.Form):
    """No name: a resource's name is the application's (read-only in the API too; a sync writes it)."""

    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    owner = forms.ModelChoiceField(
        queryset=users(), required=False, empty_label="— inherit the integration's —"
    )
    tags = TagsField()
    requestable = forms.BooleanField(required=False, help_text="Users may request roles on this resource.")
    override_allowed_durations = forms.BooleanField(
        required=False,
        label="Override allowed durations",
        help_text=_help(Resource, "override_allowed_durations"),
    )
    allowed_durations = DurationsField()

    @classmethod
    def initial_for(cls, resource: Resource) -> dict:
        return {
            "description": resource.description,
            "owner": resource.owner_id,
            "tags": ", ".join(t.name for t in resource.tags.all()),
            "requestable": resource.requestable,
            "override_allowed_durations": resource.override_allowed_durations,
            "allowed_durations": resource.allowed_durations,
        }


class RoleSettingsForm(forms.Form):
    requestable = forms.BooleanField(required=False, help_text="Users may request this role.")
    tags = TagsField()
    override_allowed_durations = forms.BooleanField(
        required=False,
        label="Override allowed durations",
        help_text=_help(Role, "override_allowed_durations"),
    )
    allowed_durations = DurationsField()

    @classmethod
    def initial_for(cls, role: Role) -> dict:
        return {
            "requestable": role.requestable,
            "tags": ", ".join(t.name for t in role.tags.all()),
            "override_allowed_durations": role.override_allowed_durations,
            "allowed_durations": role.allowed_durations,
        }


class DeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the integration's name to confirm")

    def __init__(self, *args, expected: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != self.expected:
            raise forms.ValidationError(f'Type "{self.expected}" exactly to delete it.')
        return value


class AddIntegrationForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Unique; how admins and requesters see it.")
    owner = forms.ModelChoiceField(queryset=users(), required=False, empty_label="— no owner —")
    default_workflow = forms.ModelChoiceField(
        queryset=ApprovalWorkflow.objects.all(),
        required=False,
        empty_label="— none —",
        help_text=_help(Integration, "default_workflow"),
    )
    connection_option = forms.ChoiceField(label="How to connect", widget=forms.RadioSelect, required=False)
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "class": "json-input", "spellcheck": "false"}),
        label="Connection (JSON)",
    )
    agent = forms.ModelChoiceField(
        queryset=Agent.objects.all(),
        required=False,
        empty_label="In the cloud",
        label="Where connector work runs",
        help_text="An agent runs inside your network and keeps secrets there.",
    )

    def __init__(self, *args, connector, **kwargs):
        super().__init__(*args, **kwargs)
        self.connector = connector
        options = connector.spec.connection_options or []
        if len(options) > 1:
            self.fields["connection_option"].choices = [(o.key, o.label) for o in options]
            self.fields["connection_option"].required = True
        else:
            del self.fields["connection_option"]
        for name in FLAG_FIELDS:
            self.fields[name] = _flag(name)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Integration.objects.filter(name=name).exists():
            raise forms.ValidationError("An integration with this name already exists.")
        return name

    def clean_config(self):
        return parse_json(self.cleaned_data["config"], what="connection JSON")


class ChangeSetForm(forms.Form):
    """The changes of a rule or a bulk action; only the chosen ones apply."""

    set_owner = forms.BooleanField(required=False, label=ACTION_LABELS["owner"])
    owner = forms.ModelChoiceField(queryset=users(), required=False, empty_label="— choose —")
    set_maintainers = forms.BooleanField(required=False, label=ACTION_LABELS["maintainers"])
    maintainers = forms.ModelMultipleChoiceField(
        queryset=users(), required=False, widget=forms.SelectMultiple(attrs={"size": 4})
    )
    set_workflow = forms.BooleanField(required=False, label=ACTION_LABELS["workflow"])
    workflow = forms.ModelChoiceField(
        queryset=ApprovalWorkflow.objects.all(), required=False, empty_label="— inherit —"
    )
    set_requestable = forms.BooleanField(required=False, label=ACTION_LABELS["requestable"])
    requestable = forms.TypedChoiceField(
        choices=[("true", "Requestable"), ("false", "Not requestable")],
        coerce=lambda v: v == "true",
        required=False,
    )
    set_tags = forms.BooleanField(required=False, label=ACTION_LABELS["tags"])
    tags = TagsField(help_text="")
    set_allowed_durations = forms.BooleanField(required=False, label=ACTION_LABELS["allowed_durations"])
    allowed_durations = DurationsField(label="")

    ACTIONS = ("owner", "maintainers", "workflow", "requestable", "tags", "allowed_durations")

    def changes(self) -> dict:
        data = self.cleaned_data
        out = {}
        for key in self.ACTIONS:
            if not data.get(f"set_{key}"):
                continue
            value = data.get(key)
            if key == "owner":
                value = value.pk if value else None
            elif key == "maintainers":
                value = [u.pk for u in value or []]
            elif key == "workflow":
                value = value.pk if value else None
            out[key] = value
        return out

    @classmethod
    def initial_from(cls, changes: dict) -> dict:
        initial = {}
        for key, value in (changes or {}).items():
            initial[f"set_{key}"] = True
            if key == "requestable":
                value = "true" if value else "false"
            elif key == "tags":
                value = ", ".join(value)
            initial[key] = value
        return initial

    def supported_for(self, target: str) -> list[str]:
        return list(SUPPORTED[target])


class RuleForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    target = forms.ChoiceField(choices=Rule.Target.choices, widget=forms.RadioSelect)
    match = forms.ChoiceField(choices=Rule.Match.choices, label="Combine conditions")
    scope = forms.ChoiceField(choices=Rule.Scope.choices, widget=forms.RadioSelect)
    enabled = forms.BooleanField(required=False, initial=True)
    position = forms.IntegerField(
        min_value=0, initial=100, label="Order", help_text="Rules run in this order, lowest first."
    )
