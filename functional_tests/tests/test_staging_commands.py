from io import StringIO

from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase, TransactionTestCase, override_settings

from accounts.models import User
from lists.models import Item, List


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@override_settings(STAGING=False)
class OffStagingTest(TestCase):
    def setUp(self):
        Item.objects.create(list=List.objects.create(), text="keep me")

    def test_reset_staging_refuses_naming_the_flag_and_deletes_nothing(self):
        with self.assertRaisesMessage(CommandError, "SUPERLISTS_STAGING"):
            run("reset_staging")
        self.assertEqual(Item.objects.get().text, "keep me")

    def test_create_session_refuses_naming_the_flag_and_creates_nothing(self):
        with self.assertRaisesMessage(CommandError, "SUPERLISTS_STAGING"):
            run("create_session", "edith@example.com")
        self.assertFalse(Session.objects.exists())
        self.assertFalse(User.objects.exists())


@override_settings(STAGING=True)
class ResetOnStagingTest(TransactionTestCase):
    # Not inside a test transaction: PostgreSQL refuses to TRUNCATE a table there while the
    # rows just written have deferred foreign-key checks pending, which a real run never has.
    def test_reset_staging_empties_the_database(self):
        Item.objects.create(list=List.objects.create(), text="scratch")
        run("reset_staging")
        self.assertFalse(List.objects.exists())
        self.assertFalse(Item.objects.exists())


@override_settings(STAGING=True)
class OnStagingTest(TestCase):
    def test_create_session_prints_only_the_key_of_a_logged_in_session(self):
        key = run("create_session", "edith@example.com").strip()
        session = Session.objects.get(session_key=key).get_decoded()
        user = User.objects.get(email="edith@example.com")
        self.assertEqual(session["_auth_user_id"], str(user.pk))
