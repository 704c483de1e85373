import json
import tempfile
from io import StringIO
from pathlib import Path
from unittest import mock

from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase, TransactionTestCase, override_settings

from accounts.models import User
from functional_tests.management.commands import reset_staging
from lists.models import Item, List
from superlists.identity import site_id


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


_SITES = tempfile.TemporaryDirectory()  # removed when the test process ends


def site_dotenv(site, text):
    """A site's own .env file with text in it."""
    path = Path(_SITES.name) / site / ".env"
    path.parent.mkdir()
    path.write_text(text)
    return path


STAGING_DOTENV = site_dotenv("staging", "DJANGO_DEBUG_FALSE='1'\nSUPERLISTS_STAGING='1'\n")
PRODUCTION_DOTENV = site_dotenv("production", "DJANGO_DEBUG_FALSE='1'\nSITENAME='example.com'\n")


@override_settings(STAGING=False, DOTENV_FILE=PRODUCTION_DOTENV)
class OffStagingTest(TestCase):
    def setUp(self):
        Item.objects.create(list=List.objects.create(), text="keep me")

    def test_reset_staging_refuses_naming_the_flag_and_deletes_nothing(self):
        with self.assertRaisesMessage(CommandError, "SUPERLISTS_STAGING"):
            run("reset_staging", "--site-id", site_id())
        self.assertEqual(Item.objects.get().text, "keep me")

    def test_create_session_refuses_naming_the_flag_and_creates_nothing(self):
        with self.assertRaisesMessage(CommandError, "SUPERLISTS_STAGING"):
            run("create_session", "edith@example.com", "--site-id", site_id())
        self.assertFalse(Session.objects.exists())
        self.assertFalse(User.objects.exists())

    # `SUPERLISTS_STAGING=1 manage.py reset_staging` typed on production: the settings say
    # staging (the environment wins over the .env), the site's own .env does not.
    @override_settings(STAGING=True)
    def test_reset_staging_refuses_a_flag_set_only_in_the_process_environment(self):
        with self.assertRaisesMessage(CommandError, "only the .env marks a server as staging"):
            run("reset_staging", "--site-id", site_id())
        self.assertEqual(Item.objects.get().text, "keep me")

    @override_settings(STAGING=True)
    def test_create_session_refuses_a_flag_set_only_in_the_process_environment(self):
        with self.assertRaisesMessage(CommandError, str(PRODUCTION_DOTENV)):
            run("create_session", "edith@example.com", "--site-id", site_id())
        self.assertFalse(Session.objects.exists())

    @override_settings(DOTENV_FILE=STAGING_DOTENV)
    def test_a_dotenv_the_settings_did_not_load_is_named_as_such(self):
        with self.assertRaisesMessage(CommandError, "did not load that .env"):
            run("reset_staging", "--site-id", site_id())
        self.assertEqual(Item.objects.get().text, "keep me")


@override_settings(STAGING=True, DOTENV_FILE=STAGING_DOTENV)
class ResetOnStagingTest(TransactionTestCase):
    # Not inside a test transaction: PostgreSQL refuses to TRUNCATE a table there while the
    # rows just written have deferred foreign-key checks pending, which a real run never has.
    def test_reset_staging_empties_the_database(self):
        Item.objects.create(list=List.objects.create(), text="scratch")
        run("reset_staging", "--site-id", site_id())
        self.assertFalse(List.objects.exists())
        self.assertFalse(Item.objects.exists())


@override_settings(STAGING=True, DOTENV_FILE=STAGING_DOTENV)
class OnStagingTest(TestCase):
    def test_create_session_prints_only_the_key_of_a_logged_in_session(self):
        key = run("create_session", "edith@example.com", "--site-id", site_id()).strip()
        session = Session.objects.get(session_key=key).get_decoded()
        user = User.objects.get(email="edith@example.com")
        self.assertEqual(session["_auth_user_id"], str(user.pk))


@override_settings(STAGING=True, DOTENV_FILE=STAGING_DOTENV)
class AnotherSitesIdTest(TestCase):
    def test_reset_staging_refuses_when_the_browser_drives_another_site(self):
        Item.objects.create(list=List.objects.create(), text="keep me")
        with self.assertRaisesMessage(CommandError, "the one the browser drives, but this is"):
            run("reset_staging", "--site-id", "0123456789abcdef")
        self.assertEqual(Item.objects.get().text, "keep me")

    def test_a_client_that_names_no_site_is_refused(self):
        with self.assertRaisesMessage(CommandError, "--site-id"):
            run("create_session", "edith@example.com")
        self.assertFalse(Session.objects.exists())

    def test_create_session_runs_on_the_site_with_its_own_id(self):
        key = run("create_session", "edith@example.com", "--site-id", site_id()).strip()
        self.assertTrue(Session.objects.filter(session_key=key).exists())


@override_settings(STAGING=True, DOTENV_FILE=STAGING_DOTENV)
class ResetWithPreflightTest(TransactionTestCase):
    def test_a_preflight_with_problems_is_printed_and_nothing_is_deleted(self):
        Item.objects.create(list=List.objects.create(), text="keep me")
        out = StringIO()
        with self.assertRaisesMessage(CommandError, "nothing was changed"):
            call_command(
                "reset_staging", "--site-id", site_id(), "--preflight", "127.0.0.2", stdout=out
            )
        report = json.loads(out.getvalue())
        self.assertIn("does not cover 127.0.0.2", " ".join(report["problems"]))
        self.assertEqual(Item.objects.get().text, "keep me")

    def test_a_clean_preflight_is_printed_and_the_database_emptied(self):
        Item.objects.create(list=List.objects.create(), text="scratch")
        clean = {"problems": [], "site_id": site_id()}
        with mock.patch.object(reset_staging, "run_checks", return_value=clean):
            out = run("reset_staging", "--site-id", site_id(), "--preflight", "127.0.0.2")
        self.assertEqual(json.loads(out), clean)
        self.assertFalse(Item.objects.exists())
