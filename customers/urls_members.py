"""Signing in (rate limited), a tailnet's members, and invitation links."""

from django.urls import path

from . import members

app_name = "members"

urlpatterns = [
    # Django's sign-in and password reset views with rate-limited forms; the other
    # account pages are django.contrib.auth's own. These have to come before
    # `accounts/` in the root URLconf; reversing "login" still finds the same address.
    path("accounts/login/", members.login, name="login"),
    path("accounts/password_reset/", members.password_reset, name="password_reset"),
    path("t/<slug:slug>/members/", members.members, name="list"),
    path("t/<slug:slug>/members/invite/", members.invite, name="invite"),
    path("t/<slug:slug>/members/<int:pk>/remove/", members.remove, name="remove"),
    path("t/<slug:slug>/members/<int:pk>/role/", members.change_role, name="role"),
    path("t/<slug:slug>/invitations/<int:pk>/revoke/", members.revoke, name="revoke"),
    path("invite/<str:secret>/", members.accept, name="accept"),
    path("invite/<str:secret>/new-account/", members.accept_new_account, name="new_account"),
]
