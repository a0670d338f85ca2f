"""Tokens stored without an expiry by earlier versions get the one they now have: API_TOKEN_MAX_DAYS after
they were created, so the screens and the API show when they stop working."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.db.models import F


def set_expiry(apps, schema_editor):
    ApiToken = apps.get_model("governance", "ApiToken")
    days = timedelta(days=getattr(settings, "API_TOKEN_MAX_DAYS", 365))
    ApiToken.objects.filter(expires_at__isnull=True).update(expires_at=F("created_at") + days)


class Migration(migrations.Migration):
    dependencies = [("governance", "0006_api_token_lifetime_help")]

    operations = [migrations.RunPython(set_expiry, migrations.RunPython.noop)]
