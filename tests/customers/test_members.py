"""A tailnet's members page and invitations, told with alice (owner of acme), bob
(member of globex), carol (no tailnet), staff and anonymous visitors."""

import hashlib
import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client
from django.utils import timezone

from customers import services
from customers.models import Invitation, Membership
from tests.conftest import PASSWORD

MEMBERS = "/t/acme/members/"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"members-{uuid.uuid4()}",
        }
    }


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def text(response):
    return response.content.decode()


def add_person(username, email, tailnet=None, role="member", **fields):
    user = get_user_model().objects.create_user(username, email, PASSWORD, **fields)
    if tailnet is not None:
        Membership.objects.create(user=user, tailnet=tailnet, role=role)
    return user


def invite(client, email, role="member", slug="acme"):
    return client.post(f"/t/{slug}/members/invite/", {"email": email, "role": role}, follow=True)


def link_in_last_mail():
    return re.search(r"https?://[^/\s]+(/invite/[\w-]+/)", mail.outbox[-1].body).group(1)


# --- What each person sees -------------------------------------------------------------------


def test_alice_sees_her_people_and_can_invite(people):
    add_person("dave", "dave@acme.com", people["acme"], "admin", first_name="Dave")
    html = text(client_for(people["alice"]).get(MEMBERS))
    assert 'Members <span class="sub">of acme.com</span>' in html
    assert "alice@acme.com" in html
    assert "Dave" in html
    assert "Invite someone" in html
    assert "Pending invitations" in html
    assert "Remove dave" in html
    assert "Leave tailnet" in html  # her own row
    assert 'action="/accounts/logout/"' in html


def test_bob_sees_who_is_in_globex_but_cannot_manage_it(people):
    add_person("erin", "erin@globex.com", people["globex"], "owner")
    html = text(client_for(people["bob"]).get("/t/globex/members/"))
    assert "erin@globex.com" in html
    assert "Invite someone" not in html
    assert "Pending invitations" not in html
    assert "Remove erin" not in html
    assert "/role/" not in html
    assert "Leave tailnet" in html


def test_bob_cannot_invite_anyone(people):
    response = invite(client_for(people["bob"]), "mallory@example.org", slug="globex")
    assert "Only owners and admins can invite people." in text(response)
    assert not Invitation.objects.exists()
    assert mail.outbox == []
    with pytest.raises(ValidationError, match="Only owners and admins"):
        services.membership_invite(
            tailnet=people["globex"], email="mallory@example.org", role="member", by=people["bob"]
        )


def test_the_members_page_costs_the_same_queries_for_two_people_or_twenty(
    people, django_assert_max_num_queries
):
    client = client_for(people["alice"])
    with django_assert_max_num_queries(20) as few:
        client.get(MEMBERS)
    for n in range(18):
        add_person(f"p{n}", f"p{n}@acme.com", people["acme"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert text(client.get(MEMBERS)).count("@acme.com") == 19


# --- Isolation: one door, the same 404 for everyone outside -------------------------------------


def action_paths(people):
    """Every members URL of acme, and the same URLs for a tailnet that doesn't exist."""
    alice_membership = Membership.objects.get(user=people["alice"])
    invitation, _ = services.membership_invite(
        tailnet=people["acme"], email="someone@acme.com", role="member", by=people["alice"]
    )
    paths = [
        "/t/{}/members/",
        "/t/{}/members/invite/",
        f"/t/{{}}/members/{alice_membership.pk}/remove/",
        f"/t/{{}}/members/{alice_membership.pk}/role/",
        f"/t/{{}}/invitations/{invitation.pk}/revoke/",
    ]
    return [(path.format("acme"), path.format("doesnotexist")) for path in paths]


@pytest.mark.parametrize("person", ["carol", "bob", "staff"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_outsiders_get_the_404_of_a_tailnet_that_does_not_exist(people, person, method):
    client = client_for(people[person])
    for real, unknown in action_paths(people):
        mine = getattr(client, method)(real, {"email": "x@example.org", "role": "owner"})
        none = getattr(client, method)(unknown, {"email": "x@example.org", "role": "owner"})
        assert mine.status_code == none.status_code == 404, real
        assert mine.content == none.content
    # Nothing changed on the way.
    assert Membership.objects.get(user=people["alice"]).role == "owner"
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitors_get_the_same_login_redirect_for_every_slug(client, people, method):
    for real, unknown in action_paths(people):
        mine = getattr(client, method)(real)
        none = getattr(client, method)(unknown)
        assert mine.status_code == none.status_code == 302
        assert mine["Location"] == f"/accounts/login/?next={real}"
        assert none["Location"] == f"/accounts/login/?next={unknown}"


def test_alice_cannot_reach_into_another_tailnet_by_id(people):
    erin = add_person("erin", "erin@globex.com", people["globex"], "member")
    theirs = Membership.objects.get(user=erin)
    response = client_for(people["alice"]).post(f"/t/acme/members/{theirs.pk}/remove/")
    assert response.status_code == 404
    assert Membership.objects.filter(pk=theirs.pk).exists()


def test_the_members_page_is_private(people):
    response = client_for(people["alice"]).get(MEMBERS)
    assert "private" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]


# --- Inviting and accepting ----------------------------------------------------------------------


def test_alice_invites_carol_who_accepts_and_alice_sees_her(people, settings):
    settings.STATUSPAGE_PUBLIC_URL = "https://status.example.com/"
    alice = client_for(people["alice"])
    page = text(invite(alice, "carol@example.net"))
    assert "Invitation sent to carol@example.net as member" in page
    assert "carol@example.net" in page.split("Pending invitations")[1]

    message = mail.outbox[0]
    assert message.to == ["carol@example.net"]
    assert "acme.com" in message.subject
    assert "https://status.example.com/invite/" in message.body
    secret = link_in_last_mail().split("/")[2]
    stored = Invitation.objects.get()
    assert stored.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(Invitation.objects.values().get())

    # Carol opens the link: first she signs in, and comes back.
    anonymous = Client()
    response = anonymous.get(link_in_last_mail())
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={link_in_last_mail()}"
    signin = text(anonymous.get(response["Location"]))
    assert "Sign in with the account for the email address the invitation was sent to" in signin

    carol = client_for(people["carol"])
    offer = carol.get(link_in_last_mail())
    assert offer.status_code == 200
    assert "Join acme.com" in text(offer)
    assert "alice" in text(offer)
    assert "as a <strong>member</strong>" in text(offer)
    assert not Membership.objects.filter(user=people["carol"]).exists()  # a GET joins no one

    joined = carol.post(link_in_last_mail())
    assert joined.status_code == 302
    assert joined["Location"] == "/t/acme/"
    assert Membership.objects.get(user=people["carol"], tailnet=people["acme"]).role == "member"

    page = text(alice.get(MEMBERS))
    assert "carol@example.net" in page.split("Pending invitations")[0]
    assert "No pending invitations." in page
    assert carol.get(MEMBERS).status_code == 200


def test_someone_without_an_account_makes_one_with_the_invitation(people):
    invite(client_for(people["alice"]), "dan@example.org", role="admin")
    link = link_in_last_mail()
    visitor = Client()
    signin = text(visitor.get(visitor.get(link)["Location"]))
    assert f'<a href="{link}new-account/">Create one with the invitation</a>' in signin

    offer = visitor.get(f"{link}new-account/")
    assert offer.status_code == 200
    assert "invited <strong>dan@example.org</strong>" in text(offer)
    assert '<label for="id_username">' in text(offer)

    mismatch = visitor.post(
        f"{link}new-account/",
        {"username": "dan", "password1": "a long passphrase", "password2": "another one"},
    )
    assert mismatch.status_code == 400
    assert "The two password fields didn" in text(mismatch)
    assert not get_user_model().objects.filter(username="dan").exists()

    joined = visitor.post(
        f"{link}new-account/",
        {"username": "dan", "password1": "a long passphrase", "password2": "a long passphrase"},
    )
    assert joined["Location"] == "/t/acme/"
    dan = get_user_model().objects.get(username="dan")
    assert dan.email == "dan@example.org"
    assert dan.check_password("a long passphrase")
    assert Membership.objects.get(user=dan, tailnet=people["acme"]).role == "admin"
    assert visitor.get(MEMBERS).status_code == 200  # signed in as dan

    again = Client().get(f"{link}new-account/")
    assert "This invitation has already been used" in text(again)


def test_an_invited_address_with_an_account_signs_in_instead(people):
    invite(client_for(people["alice"]), "CAROL@example.net")
    link = link_in_last_mail()
    visitor = Client()
    page = text(visitor.get(f"{link}new-account/"))
    assert "An account for CAROL@example.net already exists." in page
    assert f"/accounts/login/?next={link.replace('/', '%2F')}" in page
    visitor.post(
        f"{link}new-account/",
        {
            "username": "carol-again",
            "password1": "a long passphrase",
            "password2": "a long passphrase",
        },
    )
    assert not get_user_model().objects.filter(username="carol-again").exists()
    assert not Membership.objects.filter(tailnet=people["acme"], user=people["carol"]).exists()


def test_a_withdrawn_invitation_makes_no_account(people):
    alice = client_for(people["alice"])
    invite(alice, "dan@example.org")
    link = link_in_last_mail()
    alice.post(f"/t/acme/invitations/{Invitation.objects.get().pk}/revoke/")
    page = Client().post(
        f"{link}new-account/",
        {"username": "dan", "password1": "a long passphrase", "password2": "a long passphrase"},
    )
    assert "This invitation was withdrawn" in text(page)
    assert not get_user_model().objects.filter(username="dan").exists()
    with pytest.raises(ValidationError, match="withdrawn"):
        services.invitation_accept_new_account(
            secret=link.split("/")[2], username="dan", password="a long passphrase"
        )
    assert not get_user_model().objects.filter(username="dan").exists()


def test_the_invited_address_matches_whatever_its_case(people):
    invite(client_for(people["alice"]), "Carol@Example.NET", role="admin")
    client_for(people["carol"]).post(link_in_last_mail())
    assert Membership.objects.get(user=people["carol"]).role == "admin"


def test_without_a_public_url_the_link_is_on_the_first_allowed_host(people, settings):
    settings.STATUSPAGE_PUBLIC_URL = ""
    settings.ALLOWED_HOSTS = ["status.example.com", "testserver"]
    invite(client_for(people["alice"]), "carol@example.net")  # opened at testserver
    assert "https://status.example.com/invite/" in mail.outbox[0].body


def test_a_link_works_once(people):
    invite(client_for(people["alice"]), "carol@example.net")
    link = link_in_last_mail()
    carol = client_for(people["carol"])
    carol.post(link)
    assert "You have already accepted this invitation." in text(carol.get(link))
    assert carol.post(link).status_code == 302  # harmless for carol herself

    twin = add_person("carol2", "carol@example.net")
    page = text(client_for(twin).get(link))
    assert "This invitation has already been used: each link works once." in page
    client_for(twin).post(link)
    assert not Membership.objects.filter(user=twin).exists()


def test_an_expired_link_is_refused(people, settings):
    settings.INVITATION_TTL_HOURS = 72
    invite(client_for(people["alice"]), "carol@example.net")
    link = link_in_last_mail()
    with time_machine.travel(timezone.now() + timedelta(hours=73), tick=False):
        carol = client_for(people["carol"])
        page = text(carol.get(link))
        assert "This invitation expired on" in page
        assert "Ask the person who invited you for a new one." in page
        carol.post(link)
    assert not Membership.objects.filter(user=people["carol"]).exists()


def test_a_withdrawn_link_is_refused(people):
    alice = client_for(people["alice"])
    invite(alice, "carol@example.net")
    link = link_in_last_mail()
    invitation = Invitation.objects.get()
    page = text(alice.post(f"/t/acme/invitations/{invitation.pk}/revoke/", follow=True))
    assert "The invitation to carol@example.net was withdrawn" in page
    assert "No pending invitations." in page

    carol = client_for(people["carol"])
    assert "This invitation was withdrawn" in text(carol.get(link))
    carol.post(link)
    assert not Membership.objects.filter(user=people["carol"]).exists()


def test_an_invitation_for_someone_else_says_why_it_is_refused(people):
    invite(client_for(people["alice"]), "carol@example.net")
    link = link_in_last_mail()
    bob = client_for(people["bob"])
    page = text(bob.get(link))
    assert (
        "This invitation is for carol@example.net, but you are signed in as bob and your "
        "account&#x27;s address is bob@globex.com."
    ) in page
    assert "Join acme.com" not in page
    bob.post(link)
    assert not Membership.objects.filter(user=people["bob"], tailnet=people["acme"]).exists()
    # Still usable by carol.
    client_for(people["carol"]).post(link)
    assert Membership.objects.filter(user=people["carol"]).exists()


def test_a_made_up_link_is_not_found(people):
    response = client_for(people["carol"]).get("/invite/made-up-secret/")
    assert response.status_code == 404
    assert "This invitation link is not valid." in text(response)


def test_inviting_again_replaces_the_earlier_link(people):
    alice = client_for(people["alice"])
    invite(alice, "carol@example.net")
    first = link_in_last_mail()
    invite(alice, "carol@example.net")
    second = link_in_last_mail()
    carol = client_for(people["carol"])
    assert "This invitation was withdrawn" in text(carol.get(first))
    carol.post(second)
    assert Membership.objects.filter(user=people["carol"]).exists()


def test_accepting_never_lowers_a_role(people):
    _, secret = services.membership_invite(
        tailnet=people["acme"], email="carol@example.net", role="member", by=people["alice"]
    )
    # Meanwhile an operator made carol an admin (through the admin).
    Membership.objects.create(user=people["carol"], tailnet=people["acme"], role="admin")
    services.invitation_accept(secret=secret, user=people["carol"])
    assert Membership.objects.get(user=people["carol"]).role == "admin"


def test_someone_already_in_the_tailnet_is_not_invited(people):
    add_person("dave", "dave@acme.com", people["acme"])
    page = text(invite(client_for(people["alice"]), "DAVE@acme.com"))
    assert "DAVE@acme.com is already a member of acme.com." in page
    assert mail.outbox == []


def test_a_bad_address_gets_a_clear_error_and_keeps_what_was_typed(people):
    response = client_for(people["alice"]).post(
        "/t/acme/members/invite/", {"email": "carol at example", "role": "member"}
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in text(response)
    assert 'value="carol at example"' in text(response)
    assert not Invitation.objects.exists()


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("smtp down")


def test_when_the_email_cannot_be_sent_no_invitation_is_left_behind(people, settings):
    alice = client_for(people["alice"])
    invite(alice, "carol@example.net")
    settings.EMAIL_BACKEND = "tests.customers.test_members.BrokenBackend"
    response = invite(alice, "carol@example.net")
    assert "could not be sent, so no invitation was made" in text(response)
    # The earlier link still works: nothing was half-done.
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1
    client_for(people["carol"]).post(link_in_last_mail())
    assert Membership.objects.filter(user=people["carol"]).exists()


def test_invitations_are_rate_limited_per_tailnet(people, monkeypatch):
    monkeypatch.setattr("customers.members.INVITES_PER_HOUR", 2)
    alice = client_for(people["alice"])
    invite(alice, "one@example.org")
    invite(alice, "two@example.org")
    page = text(invite(alice, "three@example.org"))
    assert "This tailnet has sent 2 invitations in the last hour." in page
    assert len(mail.outbox) == 2


# --- Roles: admins, owners and the last owner ----------------------------------------------------


def test_an_admin_can_invite_members_but_not_owners(people):
    dave = add_person("dave", "dave@acme.com", people["acme"], "admin")
    client = client_for(dave)
    html = text(client.get(MEMBERS))
    assert '<option value="owner"' not in html.split("Invite someone")[1]
    page = text(invite(client, "carol@example.net", role="owner"))
    assert "Select a valid choice." in page
    with pytest.raises(ValidationError, match="Only an owner can invite another owner"):
        services.membership_invite(
            tailnet=people["acme"], email="carol@example.net", role="owner", by=dave
        )
    assert "Invitation sent" in text(invite(client, "carol@example.net", role="admin"))


def test_an_admin_cannot_remove_or_demote_an_owner(people):
    dave = add_person("dave", "dave@acme.com", people["acme"], "admin")
    alice_membership = Membership.objects.get(user=people["alice"])
    client = client_for(dave)
    assert "Remove alice" not in text(client.get(MEMBERS))
    page = text(client.post(f"/t/acme/members/{alice_membership.pk}/remove/", follow=True))
    assert "Only an owner can remove an owner." in page
    page = text(
        client.post(
            f"/t/acme/members/{alice_membership.pk}/role/",
            {f"m{alice_membership.pk}-role": "member"},
            follow=True,
        )
    )
    assert "Only an owner can make or unmake owners." in page
    assert Membership.objects.get(user=people["alice"]).role == "owner"


def test_the_last_owner_can_neither_leave_nor_be_demoted(people):
    alice = client_for(people["alice"])
    mine = Membership.objects.get(user=people["alice"])
    page = text(alice.post(f"/t/acme/members/{mine.pk}/remove/", follow=True))
    assert "acme.com needs at least one owner, so its last owner can&#x27;t be removed." in page
    page = text(
        alice.post(f"/t/acme/members/{mine.pk}/role/", {f"m{mine.pk}-role": "admin"}, follow=True)
    )
    assert "its last owner can&#x27;t be demoted" in page
    assert Membership.objects.get(pk=mine.pk).role == "owner"

    # With a second owner, alice may go.
    dave = add_person("dave", "dave@acme.com", people["acme"], "member")
    theirs = Membership.objects.get(user=dave)
    page = text(
        alice.post(
            f"/t/acme/members/{theirs.pk}/role/", {f"m{theirs.pk}-role": "owner"}, follow=True
        )
    )
    assert "dave is now an owner." in page
    response = alice.post(f"/t/acme/members/{mine.pk}/remove/")
    assert response["Location"] == "/t/"
    assert not Membership.objects.filter(user=people["alice"]).exists()


def test_alice_removes_a_member(people):
    dave = add_person("dave", "dave@acme.com", people["acme"])
    theirs = Membership.objects.get(user=dave)
    page = text(
        client_for(people["alice"]).post(f"/t/acme/members/{theirs.pk}/remove/", follow=True)
    )
    assert "dave is no longer a member of acme.com." in page
    assert client_for(dave).get(MEMBERS).status_code == 404


def test_bob_leaves_globex_but_cannot_remove_anyone_else(people):
    erin = add_person("erin", "erin@globex.com", people["globex"], "owner")
    bob = client_for(people["bob"])
    page = text(
        bob.post(f"/t/globex/members/{Membership.objects.get(user=erin).pk}/remove/", follow=True)
    )
    assert "Only owners and admins can remove members." in page
    response = bob.post(
        f"/t/globex/members/{Membership.objects.get(user=people['bob']).pk}/remove/"
    )
    assert response.status_code == 302
    assert not Membership.objects.filter(user=people["bob"]).exists()
    assert bob.get("/t/globex/members/").status_code == 404


def test_bob_cannot_change_roles(people):
    mine = Membership.objects.get(user=people["bob"])
    page = text(
        client_for(people["bob"]).post(
            f"/t/globex/members/{mine.pk}/role/", {f"m{mine.pk}-role": "owner"}, follow=True
        )
    )
    assert "Only owners and admins can change roles." in page
    assert Membership.objects.get(pk=mine.pk).role == "member"


# --- Escaping -------------------------------------------------------------------------------------


def test_names_and_addresses_are_shown_as_text_never_as_markup(people):
    acme = people["acme"]
    acme.display_name = "<img src=x onerror=alert(1)>"
    acme.save(update_fields=["display_name"])
    add_person("dave", "dave@acme.com", acme, first_name="<script>alert(2)</script>")
    alice = client_for(people["alice"])
    invite(alice, '"<script>alert(3)</script>"@acme.com')
    html = text(alice.get(MEMBERS))
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&quot;&lt;script&gt;alert(3)&lt;/script&gt;&quot;@acme.com" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # The email is plain text and its subject one line.
    assert "\n" not in mail.outbox[-1].subject


# --- The admin -----------------------------------------------------------------------------------


def test_staff_see_memberships_and_invitations_in_the_admin_but_never_a_secret(people):
    _, secret = services.membership_invite(
        tailnet=people["acme"], email="carol@example.net", role="member", by=people["alice"]
    )
    invitation = Invitation.objects.get()
    staff = client_for(people["staff"])
    assert "alice" in text(staff.get("/admin/customers/membership/?q=acme"))
    listing = text(staff.get("/admin/customers/invitation/?state=pending"))
    assert "carol@example.net" in listing
    page = text(staff.get(f"/admin/customers/invitation/{invitation.pk}/change/"))
    assert invitation.digest in page
    assert secret not in page
    assert staff.get("/admin/customers/invitation/add/").status_code == 403

    staff.post(
        "/admin/customers/invitation/",
        {"action": "revoke", "_selected_action": [invitation.pk]},
    )
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


def test_an_invitation_link_with_a_huge_query_string_still_leads_to_sign_in(people, caplog):
    """A mangled link (a mail client appending 20 KB of tracking) is not an error: the
    way back after signing in is the invitation itself, without the query string."""
    invite(client_for(people["alice"]), "dan@example.org")
    link = link_in_last_mail()

    answer = Client().get(link, {"utm_source": "x" * 20_000})
    plain = Client().get(link, {"utm_source": "mail"})

    assert answer.status_code == 302
    assert answer["Location"] == f"/accounts/login/?next={link}"
    assert plain["Location"].startswith(f"/accounts/login/?next={link}%3Futm_source%3Dmail")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    tailnet_page = Client().get("/t/acme/", {"q": "y" * 20_000})
    assert tailnet_page["Location"] == "/accounts/login/?next=/t/acme/"
