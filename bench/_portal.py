"""Shared by the portal benchmarks: Django on a PostgreSQL database of its own, created and migrated."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def setup(default_db: str) -> None:
    """Point Django at ``DATABASE_URL`` (default: ``default_db`` on the local server), create it, migrate."""
    import psycopg

    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{default_db}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.test_settings")
    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def reset_inventory() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE integrations_permission, integrations_account, integrations_roleimplication, "
            "integrations_role_tags, integrations_resource_tags, integrations_maintainer, "
            "integrations_prerequisitepermission_alternatives, integrations_prerequisitepermission, "
            "integrations_role, integrations_resource, integrations_integration CASCADE"
        )
