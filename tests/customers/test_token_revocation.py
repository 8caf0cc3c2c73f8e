"""The API tokens a person made stop working, at their next request, once that person
could no longer make them: removed from the tailnet (from the members page, the admin,
or with their account), deactivated (every token), or no longer staff (the operator
tokens). Told with alice (owner of acme), dave (an admin of acme she invited), bob
(member of globex), staff (a superuser) and olivia (another operator)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from customers import services
from customers.models import Membership
from plumbing.models import ApiToken
from plumbing.tokens import api_token_create
from tests.conftest import PASSWORD

ACME_STATUS = "/api/v1/tailnets/acme/status"
OPERATOR_API = "/api/v1/incidents/"


@pytest.fixture
def dave(people):
    dave = get_user_model().objects.create_user("dave", "dave@acme.com", PASSWORD)
    Membership.objects.create(user=dave, tailnet=people["acme"], role="admin")
    return dave


@pytest.fixture
def olivia(people):
    return get_user_model().objects.create_user(
        "olivia", "olivia@example.com", PASSWORD, is_staff=True
    )


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def works(secret, path=ACME_STATUS):
    """Whether the token is let in; asking also puts it in the token cache."""
    status = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code
    assert status in (200, 401), status
    return status == 200


def daves_script_token(dave):
    """The token dave makes on acme's tokens page for his script."""
    created = signed_in(dave).post("/t/acme/tokens/", {"action": "create", "name": "dave's"})
    assert created.status_code == 201
    secret = created.context["secret"]
    assert works(secret)
    return secret


def alices_token(people):
    secret = api_token_create(
        name="Grafana", scope="tailnet", tailnet=people["acme"], by=people["alice"]
    )[1]
    assert works(secret)
    return secret


def admin_edit_user(user, by, **changes):
    """Save ``user``'s admin change form as ``by`` would, with ``changes`` made."""
    flags = {
        flag: changes.get(flag, getattr(user, flag))
        for flag in ("is_active", "is_staff", "is_superuser")
    }
    form = {
        "username": user.username,
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "10:00:00",
        **{flag: "on" for flag, on in flags.items() if on},
    }
    response = signed_in(by).post(f"/admin/auth/user/{user.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert all(getattr(user, flag) == on for flag, on in flags.items())


# --- Leaving a tailnet ----------------------------------------------------------------------


def test_alice_removes_dave_and_the_token_he_made_stops_at_once(people, dave):
    secret = daves_script_token(dave)
    alices = alices_token(people)
    membership = Membership.objects.get(user=dave)

    removed = signed_in(people["alice"]).post(f"/t/acme/members/{membership.pk}/remove/")
    assert removed.status_code == 302

    assert not works(secret)
    assert works(alices)
    # Alice's tokens page says so: her token is active, dave's revoked.
    tokens = signed_in(people["alice"]).get("/t/acme/tokens/").context["tokens"]
    assert {(token.name, token.revoked_at is None) for token in tokens} == {
        ("Grafana", True),
        ("dave's", False),
    }


def test_dave_leaves_acme_and_the_token_he_made_stops(people, dave):
    secret = daves_script_token(dave)
    membership = Membership.objects.get(user=dave)

    signed_in(dave).post(f"/t/acme/members/{membership.pk}/remove/")

    assert not Membership.objects.filter(user=dave).exists()
    assert not works(secret)


def test_dave_keeps_the_tokens_of_the_tailnets_he_stays_in(people, dave):
    Membership.objects.create(user=dave, tailnet=people["globex"], role="admin")
    acme_secret = daves_script_token(dave)
    globex_secret = api_token_create(
        name="dave's globex", scope="tailnet", tailnet=people["globex"], by=dave
    )[1]
    globex_status = "/api/v1/tailnets/globex/status"
    assert works(globex_secret, globex_status)

    services.membership_remove(
        tailnet=people["acme"], membership=Membership.objects.get(user=dave, tailnet__slug="acme"),
        by=people["alice"],
    )  # fmt: skip

    assert not works(acme_secret)
    assert works(globex_secret, globex_status)


@pytest.mark.parametrize("door", ["delete page", "delete action"])
def test_staff_remove_dave_in_the_admin_and_his_token_stops(people, dave, door):
    secret = daves_script_token(dave)
    alices = alices_token(people)
    membership = Membership.objects.get(user=dave)
    staff = signed_in(people["staff"])

    if door == "delete page":
        response = staff.post(
            f"/admin/customers/membership/{membership.pk}/delete/", {"post": "yes"}
        )
    else:
        response = staff.post(
            "/admin/customers/membership/",
            {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"},
        )
    assert response.status_code == 302

    assert not Membership.objects.filter(user=dave).exists()
    assert not works(secret)
    assert works(alices)


def test_a_membership_cannot_be_moved_to_another_tailnet_in_the_admin(people, dave):
    secret = daves_script_token(dave)
    membership = Membership.objects.get(user=dave)

    saved = signed_in(people["staff"]).post(
        f"/admin/customers/membership/{membership.pk}/change/",
        {
            "user": people["bob"].pk,
            "tailnet": people["globex"].pk,
            "role": "member",
            "created_at_0": "2026-01-01",
            "created_at_1": "10:00:00",
        },
    )
    assert saved.status_code == 302

    membership.refresh_from_db()
    assert (membership.user, membership.tailnet, membership.role) == (
        dave,
        people["acme"],
        "member",
    )
    assert works(secret)


def test_deleting_daves_account_stops_every_token_he_made(people, dave):
    secret = daves_script_token(dave)
    alices = alices_token(people)

    response = signed_in(people["staff"]).post(
        f"/admin/auth/user/{dave.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302

    assert not get_user_model().objects.filter(username="dave").exists()
    assert not works(secret)
    assert works(alices)


# --- Deactivated accounts -------------------------------------------------------------------


def test_deactivating_dave_in_the_admin_stops_his_tokens(people, dave):
    secret = daves_script_token(dave)
    alices = alices_token(people)

    admin_edit_user(dave, people["staff"], is_active=False)

    assert not works(secret)
    assert works(alices)


def test_deactivating_an_operator_anywhere_stops_every_token_she_made(people, olivia):
    staff_secret = api_token_create(name="ops", scope="staff", by=olivia)[1]
    api_token_create(name="ams probe", scope="probe", by=olivia)
    acme_secret = api_token_create(
        name="acme support", scope="tailnet", tailnet=people["acme"], by=olivia
    )[1]
    assert works(staff_secret, OPERATOR_API)
    assert works(acme_secret)

    olivia.is_active = False
    olivia.save()

    assert not works(staff_secret, OPERATOR_API)
    assert not works(acme_secret)
    assert ApiToken.objects.get(name="ams probe").revoked_at is not None


def test_deactivating_many_accounts_at_once_in_the_admin_stops_their_tokens(people, dave, olivia):
    secret = daves_script_token(dave)
    staff_secret = api_token_create(name="ops", scope="staff", by=olivia)[1]
    kept = api_token_create(name="staff's", scope="staff", by=people["staff"])[1]
    daves_session = signed_in(dave)
    assert daves_session.get("/t/acme/").status_code == 200
    assert works(staff_secret, OPERATOR_API)

    response = signed_in(people["staff"]).post(
        "/admin/auth/user/",
        {"action": "deactivate", "_selected_action": [dave.pk, olivia.pk]},
        follow=True,
    )
    assert "Deactivated 2 account(s)" in response.content.decode()

    assert not works(secret)
    assert not works(staff_secret, OPERATOR_API)
    assert works(kept, OPERATOR_API)
    assert daves_session.get("/t/acme/").status_code == 302  # signed out, too


def test_the_deactivating_service_counts_only_the_active(people, dave):
    secret = daves_script_token(dave)
    users = get_user_model().objects.filter(username__in=["dave", "bob"])
    assert services.users_deactivate(users=users) == 2
    assert services.users_deactivate(users=users) == 0
    assert not works(secret)


# --- Leaving the staff --------------------------------------------------------------------------


def test_an_operator_who_is_no_longer_staff_loses_her_operator_tokens(people, olivia):
    staff_secret = api_token_create(name="ops", scope="staff", by=olivia)[1]
    api_token_create(name="ams probe", scope="probe", by=olivia)
    acme_secret = api_token_create(
        name="acme support", scope="tailnet", tailnet=people["acme"], by=olivia
    )[1]
    others = api_token_create(name="staff's", scope="staff", by=people["staff"])[1]
    alices = alices_token(people)
    assert works(staff_secret, OPERATOR_API)
    assert works(acme_secret)

    admin_edit_user(olivia, people["staff"], is_staff=False)

    assert not works(staff_secret, OPERATOR_API)
    assert not works(acme_secret)  # made in the admin; she is no member of acme
    assert ApiToken.objects.get(name="ams probe").revoked_at is not None
    assert works(others, OPERATOR_API)
    assert works(alices)


def test_an_operator_who_is_a_member_keeps_that_tailnets_tokens_when_she_leaves_staff(
    people, olivia
):
    Membership.objects.create(user=olivia, tailnet=people["acme"], role="admin")
    acme_secret = api_token_create(
        name="olivia's", scope="tailnet", tailnet=people["acme"], by=olivia
    )[1]
    staff_secret = api_token_create(name="ops", scope="staff", by=olivia)[1]

    olivia.is_staff = False
    olivia.save(update_fields=["is_staff"])

    assert works(acme_secret)
    assert not works(staff_secret, OPERATOR_API)


def test_signing_in_changes_no_token(people, dave):
    secret = daves_script_token(dave)
    Client().post("/accounts/login/", {"username": "dave", "password": PASSWORD})
    assert works(secret)
