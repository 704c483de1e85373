import os
import tempfile
from pathlib import Path
from unittest import mock

from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase

from deploy_tools.connect import ConnectError, settings_from_environment
from functional_tests.browsers import headless
from functional_tests.server import _Pop3Mailbox
from superlists.env import (
    BadVariable,
    env_bool,
    env_int,
    env_list,
    env_required,
    format_dotenv,
    load_dotenv,
    read_dotenv,
)


class EnvBoolTest(SimpleTestCase):
    def test_true_and_false_words(self):
        for word, expected in [("1", True), ("YES", True), ("true", True), ("y", True)]:
            with mock.patch.dict(os.environ, {"FLAG": word}):
                self.assertIs(env_bool("FLAG"), expected)
        for word in ("0", "no", "False", ""):
            with mock.patch.dict(os.environ, {"FLAG": word}):
                self.assertIs(env_bool("FLAG", default=True), False)

    def test_unset_gives_default(self):
        with mock.patch.dict(os.environ, clear=True):
            self.assertIs(env_bool("FLAG"), False)
            self.assertIs(env_bool("FLAG", default=True), True)

    def test_junk_is_an_error_naming_the_variable(self):
        with (
            mock.patch.dict(os.environ, {"FLAG": "maybe"}),
            self.assertRaisesMessage(ImproperlyConfigured, "FLAG='maybe' is not a yes/no"),
        ):
            env_bool("FLAG")


class OneReaderTest(SimpleTestCase):
    """The site, the FT tools and fab read a variable the same way (superlists.env.Variables)."""

    def test_off_is_false_for_the_site_the_browsers_and_ssh(self):
        with mock.patch.dict(os.environ, {"FLAG": "off", "SELENIUM_HEADLESS": "off"}):
            self.assertIs(env_bool("FLAG", default=True), False)
            self.assertIs(headless(), False)  # off meant "headless on" here
        ssh = settings_from_environment({"SUPERLISTS_ACCEPT_NEW_HOST": "off"})
        self.assertIs(ssh["accept_new"], False)
        self.assertEqual(_Pop3Mailbox.from_environment({"POP3_SSL": "off"}, "host").port, 110)

    def test_a_port_that_is_not_a_number_is_a_sentence_naming_it(self):
        with self.assertRaisesMessage(
            BadVariable,
            "POP3_PORT='abc' is not a port. Set it in the environment you run the "
            "functional tests from.",
        ):
            _Pop3Mailbox.from_environment({"POP3_PORT": "abc"}, "host")
        with self.assertRaisesMessage(ConnectError, "STAGING_SSH_PORT='ssh' is not a port"):
            settings_from_environment({"STAGING_SSH_PORT": "ssh"})

    def test_junk_yes_no_in_the_tools_is_a_sentence(self):
        with (
            mock.patch.dict(os.environ, {"SELENIUM_HEADLESS": "maybe"}),
            self.assertRaisesMessage(BadVariable, "SELENIUM_HEADLESS='maybe' is not a yes/no"),
        ):
            headless()
        with self.assertRaisesMessage(BadVariable, "POP3_SSL='sometimes' is not a yes/no"):
            _Pop3Mailbox.from_environment({"POP3_SSL": "sometimes"}, "host")


class EnvIntTest(SimpleTestCase):
    def test_reads_numbers_and_defaults(self):
        with mock.patch.dict(os.environ, {"N": "42"}):
            self.assertEqual(env_int("N", 1), 42)
        with mock.patch.dict(os.environ, clear=True):
            self.assertEqual(env_int("N", 7), 7)

    def test_junk_and_too_small_are_errors(self):
        with mock.patch.dict(os.environ, {"N": "lots"}), self.assertRaises(ImproperlyConfigured):
            env_int("N", 1)
        with (
            mock.patch.dict(os.environ, {"N": "0"}),
            self.assertRaisesMessage(ImproperlyConfigured, "must be at least 1"),
        ):
            env_int("N", 1, minimum=1)


class EnvRequiredTest(SimpleTestCase):
    def test_missing_or_blank_names_the_variable(self):
        for env in ({}, {"SECRET": "  "}):
            with (
                mock.patch.dict(os.environ, env, clear=True),
                self.assertRaisesMessage(ImproperlyConfigured, "SECRET is not set"),
            ):
                env_required("SECRET", "it matters")

    def test_present_value_is_returned(self):
        with mock.patch.dict(os.environ, {"SECRET": "s3cret"}):
            self.assertEqual(env_required("SECRET", "it matters"), "s3cret")

    def test_env_list_splits_on_commas(self):
        with mock.patch.dict(os.environ, {"HOSTS": "a.com, b.com,,"}):
            self.assertEqual(env_list("HOSTS"), ["a.com", "b.com"])


class DotenvTest(SimpleTestCase):
    TRICKY = {
        "PLAIN": "value",
        "WITH_EQUALS": "a=b=c",
        "WITH_SPACES": "two words  and more",
        "WITH_QUOTES": """it's "quoted" """,
        "WITH_BACKSLASH": "back\\slash \\' and \\n",
        "WITH_HASH": "not # a comment",
        "WITH_DOLLAR": "$HOME and ${HOME} stay literal",
        "WITH_NEWLINE": "two\nlines",
        "EMPTY": "",
    }

    def setUp(self):
        self.folder = Path(tempfile.mkdtemp())
        self.path = self.folder / ".env"

    def test_format_then_read_round_trips_awkward_values(self):
        self.path.write_text(format_dotenv(self.TRICKY))
        self.assertEqual(read_dotenv(self.path), self.TRICKY)

    def test_reads_comments_blank_lines_and_quotes(self):
        self.path.write_text(
            "# a comment\n\nA=1\nB='single quoted = yes'\nC=\"double\"\nexport D=exported\n"
        )
        self.assertEqual(
            read_dotenv(self.path),
            {"A": "1", "B": "single quoted = yes", "C": "double", "D": "exported"},
        )

    def test_header_becomes_comments_that_reading_ignores(self):
        self.path.write_text(format_dotenv({"A": "1"}, header="written by fab\nsecond line"))
        self.assertEqual(read_dotenv(self.path), {"A": "1"})

    def test_missing_file_is_empty(self):
        self.assertEqual(read_dotenv(self.folder / "nope"), {})

    def test_load_never_overrides_the_environment(self):
        self.path.write_text("FROM_FILE=file\nALREADY=file\n")
        with mock.patch.dict(os.environ, {"ALREADY": "shell"}):
            load_dotenv(self.path)
            self.assertEqual(os.environ["FROM_FILE"], "file")
            self.assertEqual(os.environ["ALREADY"], "shell")

    def test_refuses_bad_names(self):
        with self.assertRaises(ValueError):
            format_dotenv({"NOT VALID": "x"})
