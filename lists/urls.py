from django.urls import include, path, register_converter

from lists import views


class ListIdConverter:
    """A list id as new_list_id makes them: anything else is a 404 before any query."""

    # Junk never reaches the database: PostgreSQL refuses a NUL byte in a text parameter
    # with an error (a 500), where SQLite just finds nothing.

    regex = "[A-Za-z0-9_-]{1,32}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(ListIdConverter, "list_id")

list_patterns = [
    path("new", views.new_list, name="new_list"),
    # Any address the login form accepts, `/` included (a/b@example.com is valid).
    path("users/<path:email>/", views.my_lists, name="my_lists"),
    path("<list_id:list_id>/", views.view_list, name="view_list"),
    path("<list_id:list_id>/share", views.share_list, name="share_list"),
    path("<list_id:list_id>/items/<int:item_id>/toggle", views.toggle_item, name="toggle_item"),
    path("<list_id:list_id>/items/<int:item_id>/delete", views.delete_item, name="delete_item"),
]

urlpatterns = [
    path("", views.home_page, name="home"),
    path("lists/", include(list_patterns)),
]
