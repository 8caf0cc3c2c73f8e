"""One sign-in limit for every door that checks a password: the accounts sign-in, the
admin's, and a password change; keyed on the name Django signs in, so look-alike
names share it. Told with alice (owner of acme), carol (no tailnet) and staff."""

from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import PASSWORD

WRONG = "not the password"
NEW = "a brand new passphrase"
ADDRESS = "198.51.100.7"
REFUSED = "Too many failed sign-in attempts for this username"


def sign_in(client, username, password, *, door="/accounts/login/"):
    return client.post(door, {"username": username, "password": password}, REMOTE_ADDR=ADDRESS)


def admin_sign_in(client, username, password):
    return sign_in(client, username, password, door="/admin/login/?next=/admin/")


def change_password(client, old, *, door="/accounts/password_change/"):
    return client.post(
        door,
        {"old_password": old, "new_password1": NEW, "new_password2": NEW},
        REMOTE_ADDR=ADDRESS,
    )


def signed_in_to_admin(client):
    return client.get("/admin/").status_code == 200


def has_password(username, password):
    return get_user_model().objects.get(username=username).check_password(password)


# --- The admin's door ---------------------------------------------------------------------------


def test_staffs_password_cannot_be_guessed_at_the_admin_sign_in(people):
    guesser = Client()
    for _ in range(5):
        assert "Please enter the correct" in admin_sign_in(guesser, "staff", WRONG).content.decode()

    refused = admin_sign_in(guesser, "staff", PASSWORD)
    assert refused.status_code == 200
    assert REFUSED in refused.content.decode()
    assert not signed_in_to_admin(guesser)

    # Someone else, from elsewhere, is not held up.
    elsewhere = Client()
    elsewhere.post(
        "/admin/login/?next=/admin/",
        {"username": "staff", "password": PASSWORD},
        REMOTE_ADDR="192.0.2.99",
    )
    assert signed_in_to_admin(elsewhere)


def test_guesses_at_either_sign_in_spend_one_budget_and_both_say_so_alike(people):
    guesser = Client()
    for _ in range(3):
        sign_in(guesser, "staff", WRONG)
    for _ in range(2):
        admin_sign_in(guesser, "staff", WRONG)

    at_accounts = sign_in(guesser, "staff", PASSWORD).content.decode()
    at_admin = admin_sign_in(guesser, "staff", PASSWORD).content.decode()
    assert REFUSED in at_accounts
    assert REFUSED in at_admin
    assert not signed_in_to_admin(guesser)


def test_a_right_password_at_the_admin_clears_earlier_failures(people):
    staff = Client()
    for _ in range(4):
        sign_in(staff, "staff", WRONG)
    admin_sign_in(staff, "staff", PASSWORD)
    assert signed_in_to_admin(staff)
    staff.logout()
    for _ in range(4):
        admin_sign_in(staff, "staff", WRONG)
    admin_sign_in(staff, "staff", PASSWORD)
    assert signed_in_to_admin(staff)


# --- Look-alike names -------------------------------------------------------------------------


def test_a_fullwidth_letter_signs_carol_in_as_carol(people):
    client = Client()
    assert sign_in(client, "\uff43arol", PASSWORD).status_code == 302
    assert client.get("/t/").wsgi_request.user.get_username() == "carol"


def test_look_alike_names_share_carols_budget(people):
    guesser = Client()
    # Fullwidth letters, capitals and plain carol: one name to Django, one budget here.
    for name in ("\uff43arol", "c\uff41rol", "CAROL", "\uff43\uff41\uff52\uff4f\uff4c", "carol"):
        assert REFUSED not in sign_in(guesser, name, WRONG).content.decode()

    for name in ("carol", "\uff43arol", "c\uff41rol"):
        refused = sign_in(guesser, name, PASSWORD)
        assert refused.status_code == 200
        assert REFUSED in refused.content.decode()


# --- Changing a password ------------------------------------------------------------------------


def test_alices_old_password_cannot_be_guessed_on_the_password_change_page(people):
    alice = Client()
    alice.force_login(people["alice"])
    for _ in range(5):
        wrong = change_password(alice, WRONG).content.decode()
        assert "Your old password was entered incorrectly" in wrong

    refused = change_password(alice, PASSWORD)
    assert refused.status_code == 200
    assert REFUSED in refused.content.decode()
    assert has_password("alice", PASSWORD)
    # The same budget as signing in: that door is shut too.
    assert REFUSED in sign_in(Client(), "alice", PASSWORD).content.decode()


def test_wrong_sign_ins_also_shut_the_password_change_page(people):
    for _ in range(5):
        sign_in(Client(), "alice", WRONG)
    alice = Client()
    alice.force_login(people["alice"])
    assert REFUSED in change_password(alice, PASSWORD).content.decode()
    assert has_password("alice", PASSWORD)


def test_alice_still_changes_her_password_with_the_right_old_one(people):
    alice = Client()
    alice.force_login(people["alice"])
    assert change_password(alice, PASSWORD).status_code == 302
    assert has_password("alice", NEW)


def test_the_admins_password_change_is_the_limited_page(people):
    for _ in range(5):
        admin_sign_in(Client(), "staff", WRONG)
    staff = Client()
    staff.force_login(people["staff"])

    page = staff.get("/admin/password_change/")
    assert (page.status_code, page["Location"]) == (302, "/accounts/password_change/")
    posted = change_password(staff, PASSWORD, door="/admin/password_change/")
    assert posted.status_code == 302
    assert has_password("staff", PASSWORD)
    assert REFUSED in change_password(staff, PASSWORD).content.decode()
    assert has_password("staff", PASSWORD)
