from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from lists import views as list_views

urlpatterns = [
    path("", list_views.home_page, name="home"),
    # Staff log in to the admin by emailed link too: its password form is replaced.
    path("admin/login/", account_views.admin_login),
    path("admin/", admin.site.urls),
    path("lists/", include("lists.urls")),
    path("accounts/", include("accounts.urls")),
]

handler400 = "superlists.views.bad_request"
handler403 = "superlists.views.permission_denied"
handler404 = "superlists.views.page_not_found"
handler500 = "superlists.views.server_error"
