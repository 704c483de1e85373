class PasswordlessAuthenticationBackend:
    def authenticate(self, request, token=None):
        return None

    def get_user(self, user_id):
        from accounts.models import User

        return User.objects.filter(pk=user_id).first()
