"""ApiToken moves here from incidents: the model's state only. Its table
(``incidents_apitoken``) and rows stay where they are."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('incidents', '0006_audit_actor_and_idempotency'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='ApiToken',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('scope', models.CharField(choices=[('probe', 'Probe ingestion'), ('staff', 'Operator API'), ('tailnet', "One tailnet's API"), ('metrics', 'Read /metrics')], max_length=10)),
                        ('prefix', models.CharField(help_text='First characters, to recognise it.', max_length=12)),
                        ('digest', models.CharField(max_length=64, unique=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('revoked_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('tailnet', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to='incidents.tailnet')),
                    ],
                    options={
                        'db_table': 'incidents_apitoken',
                        'ordering': ['-created_at'],
                        'constraints': [models.CheckConstraint(condition=models.Q(('scope__in', ['probe', 'staff', 'tailnet', 'metrics'])), name='apitoken_scope_valid'), models.CheckConstraint(condition=models.Q(models.Q(('scope', 'tailnet'), ('tailnet__isnull', False)), models.Q(models.Q(('scope', 'tailnet'), _negated=True), ('tailnet__isnull', True)), _connector='OR'), name='apitoken_tailnet_iff_tailnet_scope')],
                    },
                ),
            ],
        ),
    ]
