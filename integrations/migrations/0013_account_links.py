"""Who holds each account: how it was linked (``link_source``), service accounts and their owners; the
indexes that list and count them among a million accounts.

Every row stays. An account linked today was linked by a sync's correlation (the portal's grants did not
say so until now): it gets ``correlation``. ``access/migrations/0002`` then marks the links its grants made.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def linked_by_correlation(apps, schema_editor):
    Account = apps.get_model("integrations", "Account")
    Account.objects.filter(user__isnull=False).update(link_source="correlation")  # one statement


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0012_access_requests_moved_to_access"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="link_source",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Not linked"),
                    ("correlation", "Linked by a sync (same email)"),
                    ("grant", "Linked by an access grant"),
                    ("hand", "Set by hand"),
                ],
                db_default="",
                default="",
                help_text="How the account was linked to its user; a sync changes only links it made itself.",
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="account",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                help_text="The person answerable for a service account.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="owned_accounts",
                db_index=False,
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="account",
            name="service_account",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="Held by no person: a program's account, answered for by its owner.",
            ),
        ),
        migrations.RunPython(linked_by_correlation, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="account",
            index=models.Index(
                condition=models.Q(("removed_at", None), ("service_account", False), ("user", None)),
                fields=["integration", "identity", "id"],
                name="account_uncorrelated_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="account",
            index=models.Index(
                condition=models.Q(("owner__isnull", False)), fields=["owner"], name="account_owner_idx"
            ),
        ),
        # The lists' order with its tie-breaker: the pages of a million accounts are read from the index.
        migrations.RemoveIndex(model_name="account", name="integration_integra_76a395_idx"),
        migrations.AddIndex(
            model_name="account",
            index=models.Index(fields=["integration", "identity", "id"], name="account_list_order_idx"),
        ),
    ]
