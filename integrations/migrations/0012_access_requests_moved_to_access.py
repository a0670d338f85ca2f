"""Access requests, decisions and tickets moved to the ``access`` app (see ``access/migrations/0001``).

The inventory forgets them: the permission's link to its request now lives in
``access_requestpermission``, so its column goes; the three models leave this app's state only, their
tables stay as they are.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0011_integration_deletion_and_interval_bounds"),
        ("access", "0001_initial"),
    ]

    operations = [
        migrations.RemoveField(model_name="permission", name="request"),
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="AccessDecision"),
                migrations.DeleteModel(name="AccessTicket"),
                migrations.DeleteModel(name="AccessRequest"),
            ],
        ),
    ]
