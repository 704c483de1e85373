from django.contrib import admin
from django.urls import include, path

# Each app declares its own paths, so the project imports none of their code.
urlpatterns = [
    path("", include("lists.urls")),
    # Before the admin's own: accounts replaces its password login page.
    path("", include("accounts.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "superlists.views.bad_request"
handler403 = "superlists.views.permission_denied"
handler404 = "superlists.views.page_not_found"
handler500 = "superlists.views.server_error"
