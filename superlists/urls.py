from django.urls import include, path

from lists import views as list_views

urlpatterns = [
    path("", list_views.home_page, name="home"),
    path("lists/", include("lists.urls")),
    path("accounts/", include("accounts.urls")),
]

handler400 = "superlists.views.bad_request"
handler403 = "superlists.views.permission_denied"
handler404 = "superlists.views.page_not_found"
handler500 = "superlists.views.server_error"
