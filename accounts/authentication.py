"""Log people in by the token from their emailed link: the only way in, no passwords."""

import logging

from accounts.models import InvalidToken, LoginToken, User

logger = logging.getLogger(__name__)

BACKEND_PATH = f"{__name__}.PasswordlessAuthenticationBackend"


class PasswordlessAuthenticationBackend:
    def authenticate(self, request, token=None):
        """The user a login token belongs to (created on first login), or None."""
        try:
            email = LoginToken.objects.consume(token)
        except InvalidToken as reason:
            logger.debug("Login token refused: %s", reason)
            return None
        user, _ = User.objects.get_or_create(email=email)
        return user

    def get_user(self, user_id):
        return User.objects.filter(pk=user_id).first()
