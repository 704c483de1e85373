import os
import tempfile
from pathlib import Path
from unittest import mock

from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase

from superlists.env import (
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
