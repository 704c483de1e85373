"""The admin's pages for lists and their items."""

from django.contrib import admin

from lists.models import Item, List


class ItemInline(admin.TabularInline):
    model = Item
    extra = 0


@admin.register(List)
class ListAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "created_at"]
    search_fields = ["id", "owner__email", "item__text"]
    raw_id_fields = ["owner"]
    filter_horizontal = ["shared_with"]
    inlines = [ItemInline]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["text", "list", "done", "created_at"]
    list_filter = ["done"]
    search_fields = ["text"]
    raw_id_fields = ["list"]
