"""Indexes of the list screens: sorting by name, and on PostgreSQL trigram indexes for the search (``q``).

The search is ``UPPER(column) LIKE UPPER('%…%')`` (Django's ``icontains``), so each trigram index is on
``UPPER(column)``. Elsewhere (the SQLite default) the trigram part does nothing.
"""

from django.db import migrations, models

# (table, column) searched by the resources and roles lists (integrations.filters search_fields).
TRIGRAM = [
    ("integrations_resource", "name"),
    ("integrations_resource", "description"),
    ("integrations_resource", "external_id"),
    ("integrations_role", "name"),
    ("integrations_role", "external_id"),
]


def _postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def create_trigram_indexes(apps, schema_editor):
    if not _postgresql(schema_editor):
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column in TRIGRAM:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{table}_{column}_trgm" ON "{table}" USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if not _postgresql(schema_editor):
        return
    for table, column in TRIGRAM:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{table}_{column}_trgm"')


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0007_access_requests"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="resource",
            index=models.Index(fields=["name", "id"], name="resource_name_idx"),
        ),
        migrations.AddIndex(
            model_name="role",
            index=models.Index(fields=["resource", "name", "id"], name="role_resource_name_idx"),
        ),
        migrations.AddIndex(
            model_name="role",
            index=models.Index(fields=["name", "id"], name="role_name_idx"),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes, elidable=False),
    ]
