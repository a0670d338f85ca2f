"""Re-encrypt every encrypted field with the first FIELD_ENCRYPTION_KEY.

Rotation: put the new key first in FIELD_ENCRYPTION_KEY (``new,old``), run this command,
then drop the old key.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from governance.fields import EncryptedJSONField


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields with the first key of FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            fields = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedJSONField)]
            if not fields:
                continue
            with transaction.atomic():
                rows = list(model._default_manager.select_for_update().only("pk", *fields))
                # Reading decrypted with any key; writing encrypts with the first one.
                model._default_manager.bulk_update(rows, fields, batch_size=500)
            total += len(rows)
            self.stdout.write(f"{model._meta.label}: {len(rows)} row(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"{total} row(s) re-encrypted with the first key."))
