"""``manage.py seed_demo_users``: people with known passwords for the demo tailnets.

Run after ``seed_demo``. Idempotent: a person who exists keeps their password and
details; missing people and memberships are added, and a membership's role is set
back to the demo's. Also two SLA policies (a default and a stricter one for the first
person's tailnet) when there is none. Prints the logins.
"""

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from customers.models import Membership, Role
from demo.story import OPERATOR_EMAIL, OPERATOR_PASSWORD, OPERATOR_USERNAME, PEOPLE
from incidents.models import Tailnet
from notifications.models import Subscription
from notifications.services import recipient_add
from reliability.models import SlaCreditTier, SlaPolicy, TailnetSla


def _sla_policies(enterprise_tailnet: Tailnet) -> None:
    """The default SLA policy and a stricter one for the first person's tailnet, if
    no policy exists yet (an operator's own are never touched)."""
    if SlaPolicy.objects.exists():
        return
    standard = SlaPolicy.objects.create(
        name="Standard",
        target_percent=Decimal("99.9"),
        maintenance_notice_hours=48,
        is_default=True,
    )
    enterprise = SlaPolicy.objects.create(
        name="Enterprise", target_percent=Decimal("99.99"), maintenance_notice_hours=72
    )
    for policy, tiers in (
        (standard, (("99.9", 10), ("99", 25), ("95", 50))),
        (enterprise, (("99.99", 10), ("99.9", 25), ("99", 50))),
    ):
        for below, credit in tiers:
            SlaCreditTier.objects.create(
                policy=policy, below_percent=Decimal(below), credit_percent=credit
            )
    TailnetSla.objects.create(tailnet=enterprise_tailnet, policy=enterprise)


class Command(BaseCommand):
    help = "Create demo people with known passwords for seed_demo's tailnets (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = {slug for person in PEOPLE for slug, _ in person.memberships}
        tailnets = Tailnet.objects.in_bulk(slugs, field_name="slug")
        missing = sorted(slugs - tailnets.keys())
        if missing:
            raise CommandError(
                f"The demo tailnets {', '.join(missing)} don't exist: run `manage.py "
                "seed_demo` first."
            )
        users = get_user_model()
        created = []
        with transaction.atomic():
            for person in PEOPLE:
                user = users.objects.filter(username=person.username).first()
                if user is None:
                    user = users.objects.create_user(
                        person.username,
                        person.email,
                        person.password,
                        first_name=person.first_name,
                    )
                    created.append(person.username)
                for slug, role in person.memberships:
                    Membership.objects.update_or_create(
                        user=user, tailnet=tailnets[slug], defaults={"role": role}
                    )
                    # Owners hear about their tailnet's own incidents (printed on the console).
                    known = Subscription.objects.filter(tailnet=tailnets[slug], email=user.email)
                    if role == Role.OWNER and not known.exists():
                        recipient_add(tailnet=tailnets[slug], email=user.email, by=user)
            _sla_policies(tailnets[PEOPLE[0].memberships[0][0]])
            if not users.objects.filter(username=OPERATOR_USERNAME).exists():
                users.objects.create_superuser(OPERATOR_USERNAME, OPERATOR_EMAIL, OPERATOR_PASSWORD)
                created.append(OPERATOR_USERNAME)

        self.stdout.write(
            f"Demo people: created {', '.join(created)}." if created else "Demo people present."
        )
        self.stdout.write("Sign in at /accounts/login/ as:")
        for person in PEOPLE:
            self.stdout.write(f"  {person.username} / {person.password}  {person.note}")
        self.stdout.write(f"  {OPERATOR_USERNAME} / {OPERATOR_PASSWORD}  staff, at /admin/")
        self.stdout.write(
            "Invitation, password reset and notification emails are printed on this console "
            "(owners are their tailnet's email recipients; see /t/<tailnet>/notifications/)."
        )
