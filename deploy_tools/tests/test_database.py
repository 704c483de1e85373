"""Unit tests for the database host's pure parts, and DATABASE_URL written into a real .env."""

import base64
import io
import shutil
import stat
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

import dj_database_url
from invoke import Config, Context
from invoke.exceptions import Exit

from deploy_tools import database, fabfile
from deploy_tools.errors import DeployError
from deploy_tools.tests.test_fabfile import commands, server
from superlists.env import format_dotenv, parse_dotenv

URL = "postgres://superlists_example_com:s3cret-Pass_word@127.0.0.6:5432/superlists_example_com"
# What PostgreSQL 15 itself stored for `CREATE ROLE vec PASSWORD 'pencil'`.
POSTGRES_VERIFIER = (
    "SCRAM-SHA-256$4096:5u4ZM2mtRkSWMtJNT4tgkQ==$G99xzX8M6K51PEVdfvsD7t9jOuRZ4JmiZUMwlFnJjuk=:"
    "2Gng1hauA3mFZOD/VilR9G1ZuNLFLV3WL6xB/uUoiv0="
)
# initdb's file, in short: every role to every database from 127.0.0.1 with a password.
INITDB_HBA = (
    "# PostgreSQL Client Authentication Configuration File\n"
    "local   all             all                                     peer\n"
    "host    all             all             127.0.0.1/32            scram-sha-256\n"
    "host    superlists_example_com superlists_example_com 127.0.0.1/32 scram-sha-256\n"
)


class IdentifierTest(unittest.TestCase):
    def test_a_site_name_becomes_a_lower_case_sql_identifier(self):
        self.assertEqual(
            database.identifier_for("Superlists.Example-site.com"), "superlists_example_site_com"
        )

    def test_names_postgresql_or_pg_hba_conf_give_a_meaning_get_a_prefix(self):
        for sitename, name in (
            ("127.0.0.2", "site_127_0_0_2"),
            ("pg.example.com", "site_pg_example_com"),
            ("postgres", "site_postgres"),
            ("all", "site_all"),
            ("replication", "site_replication"),
        ):
            with self.subTest(sitename=sitename):
                self.assertEqual(database.identifier_for(sitename), name)

    def test_long_site_names_are_cut_to_63_characters_and_stay_apart(self):
        first = database.identifier_for("a" * 80 + ".example.com")
        second = database.identifier_for("a" * 80 + ".example.org")
        self.assertEqual((len(first), len(second)), (63, 63))
        self.assertNotEqual(first, second)

    def test_a_site_name_that_is_no_site_name_is_refused(self):
        with self.assertRaisesRegex(ValueError, "not a usable site name"):
            database.identifier_for("x'; DROP ROLE postgres; --")


class HbaTest(unittest.TestCase):
    def test_the_role_reaches_only_its_database_from_each_client_and_the_rest_is_rejected(self):
        text = database.hba_conf(INITDB_HBA, "site_a", ["10.0.0.2", "10.0.0.3"])
        rules = [line for line in text.splitlines() if not line.startswith("#")]
        self.assertEqual(
            rules,
            [
                "local all postgres peer",
                "host site_a site_a 10.0.0.2/32 scram-sha-256",
                "host site_a site_a 10.0.0.3/32 scram-sha-256",
                "host all all 0.0.0.0/0 reject",
                "host all all ::/0 reject",
            ],
        )

    def test_an_ipv6_client_is_one_address_too(self):
        self.assertEqual(
            database.hba_lines("site_a", ["2001:db8::2"]),
            ["host site_a site_a 2001:db8::2/128 scram-sha-256"],
        )

    def test_other_sites_lines_stay_and_this_sites_are_replaced(self):
        first = database.hba_conf("", "site_a", ["10.0.0.2"])
        both = database.hba_conf(first, "site_b", ["10.0.0.9"])
        again = database.hba_conf(both, "site_a", ["10.0.0.3"])
        self.assertIn("host site_b site_b 10.0.0.9/32 scram-sha-256", again)
        self.assertIn("host site_a site_a 10.0.0.3/32 scram-sha-256", again)
        self.assertNotIn("10.0.0.2", again)
        self.assertTrue(again.endswith("host all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n"))
        self.assertEqual(database.hba_conf(again, "site_a", ["10.0.0.3"]), again)

    def test_an_address_that_is_not_one_is_refused_naming_the_option(self):
        with self.assertRaisesRegex(DeployError, "--clients takes IP addresses.*'web1'"):
            database.address("web1", "--clients")


class UrlTest(unittest.TestCase):
    def test_the_settings_read_the_url_back_into_its_parts(self):
        url = database.database_url("site_a", "p-W_d", "127.0.0.6", 5433)
        parsed = dj_database_url.parse(url)
        self.assertEqual(parsed["ENGINE"], "django.db.backends.postgresql")
        self.assertEqual(
            [parsed[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")],
            ["site_a", "site_a", "p-W_d", "127.0.0.6", 5433],
        )

    def test_a_password_with_url_characters_comes_back_whole(self):
        url = database.database_url("site_a", "p@ss/w:rd%#?", "127.0.0.6", 5432)
        self.assertEqual(dj_database_url.parse(url)["PASSWORD"], "p@ss/w:rd%#?")

    def test_an_ipv6_host_is_bracketed(self):
        url = database.database_url("site_a", "pw", "2001:db8::4", 5432)
        self.assertEqual(dj_database_url.parse(url)["HOST"], "2001:db8::4")

    def test_a_url_is_shown_without_its_password(self):
        self.assertEqual(
            database.shown(URL),
            "postgres://superlists_example_com:***@127.0.0.6:5432/superlists_example_com",
        )
        self.assertEqual(database.shown("sqlite:////srv/db.sqlite3"), "sqlite:////srv/db.sqlite3")

    def test_the_same_database_with_another_password_is_the_same_database(self):
        other_password = URL.replace("s3cret-Pass_word", "new")
        self.assertTrue(database.same_database(URL, other_password))
        self.assertFalse(database.same_database(URL, URL.replace(":5432", ":5433")))
        self.assertFalse(database.same_database("sqlite:////a/db.sqlite3", URL))


class ScramTest(unittest.TestCase):
    def test_postgresqls_own_verifier_matches_its_password_only(self):
        self.assertTrue(database.scram_matches(POSTGRES_VERIFIER, "pencil"))
        self.assertFalse(database.scram_matches(POSTGRES_VERIFIER, "pencil2"))
        self.assertFalse(database.scram_matches("md5abc", "pencil"))
        self.assertFalse(database.scram_matches("", "pencil"))

    def test_our_verifier_is_the_one_postgresql_makes_from_the_same_salt(self):
        salt = base64.b64decode("5u4ZM2mtRkSWMtJNT4tgkQ==")
        self.assertEqual(database.scram_verifier("pencil", salt), POSTGRES_VERIFIER)

    def test_each_verifier_has_its_own_salt(self):
        self.assertNotEqual(database.scram_verifier("pencil"), database.scram_verifier("pencil"))


class DotenvMergeTest(unittest.TestCase):
    def test_every_other_key_and_the_header_are_kept(self):
        values = {
            "DJANGO_SECRET_KEY": "a=b'c\"d",
            "EMAIL_PASSWORD": "with spaces # and a hash",
            "DATABASE_URL": "sqlite:////srv/db.sqlite3",
            "SITENAME": "staging.example.com",
        }
        text = format_dotenv(values, header="Written by `fab deploy`.\nSecond line.")
        merged = database.merged_dotenv(text, URL)
        self.assertEqual(parse_dotenv(merged), {**values, "DATABASE_URL": URL})
        self.assertTrue(merged.startswith("# Written by `fab deploy`.\n# Second line.\n"))

    def test_a_new_env_says_who_wrote_it(self):
        merged = database.merged_dotenv("", URL)
        self.assertEqual(parse_dotenv(merged), {"DATABASE_URL": URL})
        self.assertIn("fab provision-database", merged)


def local_home(home):
    """This machine, with $HOME at home: an app host's site folders, for real."""
    return Context(Config(overrides={"run": {"env": {"HOME": str(home)}}}))


class WriteDatabaseUrlTest(unittest.TestCase):
    def setUp(self):
        self.home = Path(tempfile.mkdtemp(prefix="superlists-app-host-"))
        self.addCleanup(shutil.rmtree, self.home, ignore_errors=True)
        self.root = self.home / "sites" / "staging.example.com"
        self.conn = local_home(self.home)

    def write(self, url=URL, replace=False):
        return database.write_database_url(self.conn, "staging.example.com", url, replace)

    def test_before_the_first_deploy_the_env_is_made_for_the_site_user_only(self):
        said = self.write()
        env = self.root / ".env"
        self.assertEqual(parse_dotenv(env.read_text()), {"DATABASE_URL": URL})
        self.assertEqual(stat.S_IMODE(env.stat().st_mode), 0o600)
        self.assertIn(":***@127.0.0.6", said)
        self.assertNotIn("s3cret", said)
        self.assertIn("already has", self.write())

    def test_after_a_deploy_the_live_releases_env_is_written_and_the_links_stay(self):
        release = self.root / "releases" / "abc123"
        release.mkdir(parents=True)
        (release / ".env").write_text(
            format_dotenv({"DJANGO_SECRET_KEY": "k", "SITENAME": "s"}, header="Written by fab.")
        )
        (self.root / "source").symlink_to("releases/abc123")
        (self.root / ".env").symlink_to("source/.env")
        said = self.write()
        self.assertIn(str(release / ".env"), said)
        self.assertTrue((self.root / ".env").is_symlink())
        self.assertEqual(
            parse_dotenv((release / ".env").read_text()),
            {"DJANGO_SECRET_KEY": "k", "SITENAME": "s", "DATABASE_URL": URL},
        )

    def test_a_site_on_another_database_is_switched_only_when_asked(self):
        sqlite = f"sqlite:///{self.root}/db.sqlite3"
        self.root.mkdir(parents=True)
        (self.root / ".env").write_text(format_dotenv({"DATABASE_URL": sqlite, "A": "1"}))
        with self.assertRaises(DeployError) as refused:
            self.write()
        self.assertIn(f"DATABASE_URL={sqlite}: the site's data is there", str(refused.exception))
        self.assertIn("--replace", str(refused.exception))
        self.assertEqual(parse_dotenv((self.root / ".env").read_text())["DATABASE_URL"], sqlite)
        self.write(replace=True)
        self.assertEqual(
            parse_dotenv((self.root / ".env").read_text()), {"DATABASE_URL": URL, "A": "1"}
        )

    def test_a_new_password_for_the_same_database_is_written_without_asking(self):
        self.write()
        self.write(URL.replace("s3cret-Pass_word", "new"))
        self.assertIn(":new@", parse_dotenv((self.root / ".env").read_text())["DATABASE_URL"])


class DatabaseHostTest(unittest.TestCase):
    def provision(self, *answers):
        return database.provision(
            server(*answers), "staging.example.com", "127.0.0.6", ["127.0.0.1"]
        )

    def test_someone_neither_root_nor_allowed_sudo_is_told_what_is_needed(self):
        with self.assertRaisesRegex(DeployError, "needs root.*edith is not root.*sudo -n"):
            self.provision((r"id -u", "edith\n", 0))

    def test_with_sudo_every_command_runs_through_sudo_n(self):
        c = server((r"id -u", "sudo\n", 0), (r"", "", 1))
        with self.assertRaises(DeployError):
            database.provision(c, "staging.example.com", "127.0.0.6", ["127.0.0.1"])
        self.assertGreater(len(commands(c)), 2)
        for command in commands(c)[1:]:
            self.assertTrue(command.startswith("sudo -n sh -c "), command)

    def test_a_host_without_postgresql_gets_debians_package_unattended(self):
        c = server(
            (r"id -u", "root\n", 0),
            (r"apt-get", "", 100),
            (r"", "", 0),
        )
        with self.assertRaisesRegex(DeployError, "apt-get could not install postgresql"):
            database.provision(c, "staging.example.com", "127.0.0.6", ["127.0.0.1"])
        install = next(command for command in commands(c) if "apt-get install" in command)
        self.assertIn("DEBIAN_FRONTEND=noninteractive", install)
        self.assertIn("--no-install-recommends postgresql", install)

    def test_a_cluster_listening_elsewhere_is_refused_with_what_to_give(self):
        with self.assertRaisesRegex(
            DeployError, "listens on 10.0.0.4 port 5433.*--listen-address 10.0.0.4 --port 5433"
        ):
            self.provision(
                (r"id -u", "root\n", 0),
                (r"ls /usr/lib/postgresql", "/usr/lib/postgresql/15/bin/postgres\n", 0),
                (r"pg_lsclusters", "15 superlists 5433 online postgres /d /l\n", 0),
                (r"show listen_addresses", "10.0.0.4\n", 0),
                (r"", "", 0),
            )


class ProvisionDatabaseTaskTest(unittest.TestCase):
    def test_the_task_refuses_without_the_site_or_its_address(self):
        with (
            mock.patch.object(fabfile, "_connect", return_value=server((r"", "", 0))),
            self.assertRaisesRegex(Exit, "--sitename SITE --listen-address ADDRESS"),
        ):
            fabfile.provision_database(Context(), app_hosts="web1")

    def test_an_unreachable_app_host_is_named_before_the_database_host_is_touched(self):
        db_host = server((r"", "", 0))
        with (
            mock.patch.object(fabfile, "_connect", return_value=db_host),
            redirect_stdout(io.StringIO()),
            self.assertRaises(Exit) as raised,
        ):
            fabfile.provision_database(
                Context(),
                sitename="staging.example.com",
                listen_address="127.0.0.6",
                app_hosts="nobody@127.0.0.1:1",
            )
        self.assertIn("at step 'connect to the app hosts'", raised.exception.message)
        self.assertIn("Could not connect to nobody@127.0.0.1:1", raised.exception.message)
        self.assertEqual(commands(db_host), [])


if __name__ == "__main__":
    unittest.main()
