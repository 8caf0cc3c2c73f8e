from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/webhook/", views.subscribe_webhook, name="subscribe_webhook"),
    path("subscribe/sent/", views.subscribe_sent, name="subscribe_sent"),
    path("subscribe/confirm/<str:token>/", views.confirm, name="confirm"),
    path("subscribe/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("subscribe/manage/<str:token>/", views.manage, name="manage"),
    path("t/<slug:slug>/notifications/", views.tailnet_subscriptions, name="tailnet"),
]
