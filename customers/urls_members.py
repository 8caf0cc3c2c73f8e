"""Password change and reset (limited), a tailnet's members, and invitation links."""

from django.urls import path

from . import members

app_name = "members"

urlpatterns = [
    # Django's password change and reset views with limited forms; the other account
    # pages are django.contrib.auth's own (signing in is limited in the backend,
    # customers.signin). These have to come before `accounts/` in the root URLconf;
    # reversing "password_change" still finds the same address.
    path("accounts/password_change/", members.password_change, name="password_change"),
    path("accounts/password_reset/", members.password_reset, name="password_reset"),
    path("t/<slug:slug>/members/", members.members, name="list"),
    path("t/<slug:slug>/members/invite/", members.invite, name="invite"),
    path("t/<slug:slug>/members/<id:pk>/remove/", members.remove, name="remove"),
    path("t/<slug:slug>/members/<id:pk>/role/", members.change_role, name="role"),
    path("t/<slug:slug>/invitations/<id:pk>/revoke/", members.revoke, name="revoke"),
    path("invite/<str:secret>/", members.accept, name="accept"),
    path("invite/<str:secret>/new-account/", members.accept_new_account, name="new_account"),
]
