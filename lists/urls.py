from django.urls import path

from lists import views

urlpatterns = [
    path("new", views.new_list, name="new_list"),
    path("users/<str:email>/", views.my_lists, name="my_lists"),
    path("<str:list_id>/", views.view_list, name="view_list"),
    path("<str:list_id>/share", views.share_list, name="share_list"),
    path("<str:list_id>/items/<int:item_id>/toggle", views.toggle_item, name="toggle_item"),
    path("<str:list_id>/items/<int:item_id>/delete", views.delete_item, name="delete_item"),
]
