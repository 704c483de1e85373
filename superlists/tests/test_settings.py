import os
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

BASE_DIR = Path(settings.BASE_DIR)
SERVER_ENV = {
    "DJANGO_DEBUG_FALSE": "1",
    "DJANGO_SECRET_KEY": "test-secret-" * 5,
    "DJANGO_ALLOWED_HOSTS": "superlists.test",
    "EMAIL_HOST": "127.0.0.1",
}


def run_manage(*args, env):
    """Run manage.py in a clean environment, from a folder with no .env of its own."""
    base = {"PATH": os.environ["PATH"], "LOG_DIR": tempfile.mkdtemp()}
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


class ServerSettingsTest(SimpleTestCase):
    def test_development_needs_no_variables(self):
        result = run_manage("check", env={})
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_a_complete_server_configuration_passes_check(self):
        result = run_manage("check", env=SERVER_ENV)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_each_missing_required_variable_is_named_in_a_sentence(self):
        for missing in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "EMAIL_HOST"):
            env = {k: v for k, v in SERVER_ENV.items() if k != missing}
            result = run_manage("check", env=env)
            self.assertNotEqual(result.returncode, 0, missing)
            self.assertIn(f"{missing} is not set", result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            self.assertNotIn("KeyError", result.stderr)

    def test_every_missing_variable_is_named_in_one_run(self):
        env = {"DJANGO_DEBUG_FALSE": "1", "LOGIN_TOKEN_MAX_AGE": "soon"}
        result = run_manage("check", env=env)
        self.assertNotEqual(result.returncode, 0)
        for named in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "EMAIL_HOST"):
            self.assertIn(f"{named} is not set", result.stderr)
        self.assertIn("LOGIN_TOKEN_MAX_AGE='soon' is not a whole number", result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertTrue(result.stderr.startswith("Superlists is not configured: "))

    def test_gunicorn_says_what_is_missing_in_a_sentence_not_a_traceback(self):
        gunicorn = Path(sys.executable).parent / "gunicorn"
        socket = Path(tempfile.mkdtemp()) / "gunicorn.sock"
        env = {"PATH": os.environ["PATH"], "LOG_DIR": tempfile.mkdtemp(), "HOME": "/tmp"}
        options = ["--workers", "2", "--no-control-socket", "--chdir", str(BASE_DIR)]
        result = subprocess.run(
            [gunicorn, "--bind", f"unix:{socket}", *options, "superlists.wsgi:application"],
            env={**env, "DJANGO_DEBUG_FALSE": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        # gunicorn's own lines start with a [timestamp]; the first other line is ours.
        ours = [line for line in result.stderr.splitlines() if not line.startswith("[")]
        self.assertTrue(
            ours[0].startswith("Superlists is not configured: DJANGO_SECRET_KEY is not set"),
            result.stderr,
        )
        self.assertNotIn("django.core.exceptions", result.stderr)
        self.assertNotIn("settings.py", result.stderr)

    def test_manage_py_outside_the_virtualenv_says_to_activate_it(self):
        # -S: no site-packages, as with a system Python that has no Django.
        result = subprocess.run(
            [sys.executable, "-S", str(BASE_DIR / "manage.py"), "check"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("activate the project's virtualenv", result.stderr)
        self.assertIn(". .venv/bin/activate", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_login_links_follow_the_request_only_in_development(self):
        code = "from django.conf import settings; print(repr(settings.SITE_URL))"
        development = run_manage("shell", "-c", code, env={})
        self.assertEqual(development.stdout.splitlines()[-1], "''")
        server = run_manage("shell", "-c", code, env=SERVER_ENV)
        self.assertEqual(server.stdout.splitlines()[-1], "'http://localhost:8000'")

    def test_secret_key_fallbacks_are_a_comma_separated_list(self):
        env = {**SERVER_ENV, "DJANGO_SECRET_KEY_FALLBACKS": "older-key, oldest-key,"}
        code = "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)"
        result = run_manage("shell", "-c", code, env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[-1], "['older-key', 'oldest-key']")

    def test_junk_boolean_is_a_sentence(self):
        result = run_manage("check", env={**SERVER_ENV, "DJANGO_DEBUG_FALSE": "maybe"})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("DJANGO_DEBUG_FALSE='maybe' is not a yes/no value", result.stderr)

    def test_deploy_check_warns_only_about_https(self):
        result = run_manage("check", "--deploy", env=SERVER_ENV)
        self.assertEqual(result.returncode, 0, result.stderr)
        warnings = {
            line.split(":")[0].strip() for line in result.stderr.splitlines() if ": (" in line
        }
        self.assertLessEqual(
            warnings, {"?", "security.W004", "security.W008", "security.W012", "security.W016"}
        )

    def test_https_switch_turns_on_secure_cookies_hsts_and_redirect(self):
        env = {
            **SERVER_ENV,
            "DJANGO_SECURE_HTTPS": "yes",
            "DJANGO_SECRET_KEY": "Kx9-q2Lw8-Zp4-Rt7-Vb1-Nm6-Hj3-Fd5-Gs0-Yc2-Xe8-Ua4-Oi9",
        }
        result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
        # Behind TLS no warning is left to excuse (W021, HSTS preload, was the last one).
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("no issues (0 silenced)", result.stdout)
