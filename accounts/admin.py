"""The admin's pages for users and login tokens (tokens are read-only: they are evidence)."""

from django.contrib import admin

from accounts.models import LoginToken, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["email", "is_staff", "is_superuser", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser"]
    search_fields = ["email"]
    readonly_fields = ["date_joined", "last_login"]


@admin.register(LoginToken)
class LoginTokenAdmin(admin.ModelAdmin):
    list_display = ["email", "created_at", "used_at"]
    search_fields = ["email"]
    # The hash is no use to a reader and no use to an attacker: leave it out anyway.
    exclude = ["token_hash"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
