"""People: the person of each portal user, and one for every user there already is (status active).

From here on every user gets their person when created (``IdentitiesConfig.ready``); this migration makes
those of the users created before. Written in batches, so an organisation of any size migrates in bounded
memory; run again (after a migration back), it only adds the people that are missing.
"""

import django.db.models.deletion
import django.utils.timezone
import identities.validators
from django.conf import settings
from django.db import migrations, models


BATCH = 5000


def people_for_every_user(apps, schema_editor):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Person = apps.get_model("identities", "Person")
    db = schema_editor.connection.alias
    users = User.objects.using(db).filter(person__isnull=True).order_by("pk").values_list("pk", flat=True)
    last = 0
    while True:
        ids = list(users.filter(pk__gt=last)[:BATCH])
        if not ids:
            return
        Person.objects.using(db).bulk_create(
            [Person(user_id=pk, status="active") for pk in ids], ignore_conflicts=True
        )
        last = ids[-1]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('governance', '0007_api_tokens_expire'),
        ('integrations', '0012_access_requests_moved_to_access'),
    ]

    operations = [
        migrations.CreateModel(
            name='Person',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='person', serialize=False, to=settings.AUTH_USER_MODEL)),
                ('employee_id', models.CharField(blank=True, help_text="The HR system's id of the person; unique when set.", max_length=64)),
                ('display_name', models.CharField(blank=True, help_text='How the person is shown; empty: their first and last name.', max_length=200)),
                ('location', models.CharField(blank=True, max_length=120)),
                ('status', models.CharField(choices=[('active', 'Active'), ('leave', 'On leave'), ('terminated', 'Terminated')], db_index=True, default='active', max_length=12)),
                ('start_date', models.DateField(blank=True, null=True)),
                ('end_date', models.DateField(blank=True, null=True)),
                ('attributes', models.JSONField(blank=True, default=dict, help_text='Other attributes of the person, as a JSON object (what an identity source reports).', validators=[identities.validators.validate_attributes])),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('source', models.ForeignKey(blank=True, help_text='The identity source that last fed the person; empty: kept in the portal.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='integrations.integration')),
            ],
            options={
                'verbose_name_plural': 'people',
                'ordering': ['user__username'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('employee_id', ''), _negated=True), fields=('employee_id',), name='uniq_person_employee_id')],
            },
        ),
        migrations.RunPython(people_for_every_user, migrations.RunPython.noop),
    ]
