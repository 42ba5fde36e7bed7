from django.urls import path

from project import views

urlpatterns = [
    path("csrf", views.csrf),
    path("login", views.login_view),
    path("notify", views.notify),
    path("notify-sync", views.notify_sync),
]
