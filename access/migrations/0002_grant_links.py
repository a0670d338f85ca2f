"""Accounts the portal linked for an access grant say so (``link_source = "grant"``), so syncs keep them.

``integrations/migrations/0013`` marked every linked account as linked by a sync's correlation. Those
an access request used for its beneficiary, still linked to that beneficiary, were linked (or confirmed)
by a grant: they become ``grant``, and a later sync no longer unlinks them when the application's email
does not match the person's. One statement; every row stays.
"""

from django.db import migrations
from django.db.models import Exists, OuterRef


def grant_links(apps, schema_editor):
    Account = apps.get_model("integrations", "Account")
    AccessRequest = apps.get_model("access", "AccessRequest")
    granted = AccessRequest.objects.filter(account_id=OuterRef("pk"), beneficiary_id=OuterRef("user_id"))
    Account.objects.filter(Exists(granted), link_source="correlation").update(link_source="grant")


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0001_initial"),
        ("integrations", "0013_account_links"),
    ]

    operations = [migrations.RunPython(grant_links, migrations.RunPython.noop)]
