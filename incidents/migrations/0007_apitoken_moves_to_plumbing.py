"""ApiToken now lives in the plumbing app (plumbing/migrations/0001): the audit
trail points there, and this app forgets the model. Nothing changes in the
database; the content type (and so its permissions) follows the model."""

import django.db.models.deletion
from django.db import migrations, models


def content_type_follows(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="plumbing", model="apitoken").exists():
        ContentType.objects.filter(app_label="incidents", model="apitoken").update(
            app_label="plumbing"
        )


def content_type_returns(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="incidents", model="apitoken").exists():
        ContentType.objects.filter(app_label="plumbing", model="apitoken").update(
            app_label="incidents"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("incidents", "0006_audit_actor_and_idempotency"),
        ("plumbing", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="token",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="plumbing.apitoken",
                    ),
                ),
                migrations.DeleteModel(name="ApiToken"),
            ],
        ),
        migrations.RunPython(content_type_follows, content_type_returns),
    ]
