from django.urls import include, path

from accounts import views

account_patterns = [
    path("send_login_email", views.send_login_email, name="send_login_email"),
    path("login", views.login, name="login"),
    path("login/confirm", views.confirm_login, name="confirm_login"),
    path("logout", views.logout, name="logout"),
]

urlpatterns = [
    # Staff log in to the admin by emailed link too: its password form is replaced.
    path("admin/login/", views.admin_login),
    path("accounts/", include(account_patterns)),
]
