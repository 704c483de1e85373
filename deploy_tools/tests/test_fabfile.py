"""Unit tests for the fabfile: its steps run for real in a temporary home (local_host.py), its tasks
against invoke's MockContext (no server, no Django DB)."""

import glob
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path, PurePosixPath
from unittest import mock

from invoke import Collection, Context, MockContext, Result
from invoke.exceptions import Exit, UnexpectedExit

import fabfile as root_fabfile
from deploy_tools import fabfile, releases, remote, sitepaths
from deploy_tools.sitepaths import SitePaths
from deploy_tools.tests.local_host import LocalHost
from superlists.env import format_dotenv, parse_dotenv

HOME = "/home/superlists"
SITE_ROOT = f"{HOME}/sites/staging.example.com"
MAIL_ENV = {
    "EMAIL_HOST": "smtp.example.com",
    "EMAIL_PORT": "587",
    "EMAIL_HOST_USER": "site@example.com",
    "EMAIL_PASSWORD": "pa ss='w\"ord",
}


def make_site(staging=True, init="supervisor", **options):
    return fabfile.Site(
        paths=SitePaths("staging.example.com", HOME),
        user="superlists",
        init=init,
        staging=staging,
        **options,
    )


def site_in(home, init="systemd"):
    """The site with its folders under a temporary home on this machine."""
    return fabfile.Site(paths=SitePaths("staging.example.com", home), user="superlists", init=init)


def make_release(requirements=b"Django\n", name="abc123def456"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("requirements.txt")
        info.size = len(requirements)
        tar.addfile(info, io.BytesIO(requirements))
    return releases.Release(name, buffer.getvalue(), hashlib.sha256(requirements).hexdigest())


def server(*answers):
    """A MockContext answering commands by regex (searched, first match wins); it records calls."""
    results = {
        re.compile(pattern if pattern.startswith("^") else ".*?" + pattern, re.S): Result(
            stdout=out, exited=code
        )
        for pattern, out, code in answers
    }
    context = MockContext(run=results, repeat=True)
    context.host = "staging.example.com"  # as fab -H names it; a Connection always has one
    return context


def commands(context):
    return [call.args[0] for call in context.run.call_args_list]


def quietly(function, *args, **kwargs):
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        return function(*args, **kwargs)


class DotenvValuesTest(unittest.TestCase):
    def test_secret_key_is_generated_once_and_then_kept(self):
        first = fabfile.dotenv_values_for(make_site(), {}, MAIL_ENV)
        self.assertGreaterEqual(len(first["DJANGO_SECRET_KEY"]), 50)
        second = fabfile.dotenv_values_for(make_site(), first, MAIL_ENV)
        self.assertEqual(second["DJANGO_SECRET_KEY"], first["DJANGO_SECRET_KEY"])

    def test_rotating_the_secret_key_keeps_the_old_one_as_the_only_fallback(self):
        first = fabfile.dotenv_values_for(make_site(), {}, MAIL_ENV)
        rotated = fabfile.dotenv_values_for(make_site(), first, MAIL_ENV, rotate_secret_key=True)
        self.assertNotEqual(rotated["DJANGO_SECRET_KEY"], first["DJANGO_SECRET_KEY"])
        self.assertGreaterEqual(len(rotated["DJANGO_SECRET_KEY"]), 50)
        self.assertEqual(rotated["DJANGO_SECRET_KEY_FALLBACKS"], first["DJANGO_SECRET_KEY"])
        again = fabfile.dotenv_values_for(make_site(), rotated, MAIL_ENV, rotate_secret_key=True)
        self.assertEqual(again["DJANGO_SECRET_KEY_FALLBACKS"], rotated["DJANGO_SECRET_KEY"])
        kept = fabfile.dotenv_values_for(make_site(), again, MAIL_ENV)
        self.assertEqual(kept["DJANGO_SECRET_KEY"], again["DJANGO_SECRET_KEY"])
        self.assertEqual(kept["DJANGO_SECRET_KEY_FALLBACKS"], rotated["DJANGO_SECRET_KEY"])

    def test_staging_flag_is_written_only_when_asked_for(self):
        staging = fabfile.dotenv_values_for(make_site(staging=True), {}, MAIL_ENV)
        self.assertEqual(staging["SUPERLISTS_STAGING"], "1")
        production = fabfile.dotenv_values_for(make_site(staging=False), staging, MAIL_ENV)
        self.assertNotIn("SUPERLISTS_STAGING", production)

    def test_server_paths_and_urls_come_from_the_site(self):
        values = fabfile.dotenv_values_for(make_site(listen_address="127.0.0.2"), {}, MAIL_ENV)
        self.assertEqual(values["DATABASE_URL"], f"sqlite:///{SITE_ROOT}/db.sqlite3")
        # Each release collects into its own static/, the settings' default.
        self.assertNotIn("STATIC_ROOT", values)
        self.assertEqual(values["LOG_DIR"], f"{SITE_ROOT}/logs")
        self.assertEqual(values["SITE_URL"], "http://staging.example.com")
        self.assertEqual(values["DJANGO_ALLOWED_HOSTS"], "staging.example.com,127.0.0.2")
        self.assertEqual(values["DJANGO_DEBUG_FALSE"], "1")

    def test_a_database_url_and_keys_added_on_the_server_are_kept(self):
        existing = {"DATABASE_URL": "postgres://db/superlists", "SENTRY_DSN": "https://x"}
        values = fabfile.dotenv_values_for(make_site(), existing, MAIL_ENV)
        self.assertEqual(values["DATABASE_URL"], "postgres://db/superlists")
        self.assertEqual(values["SENTRY_DSN"], "https://x")

    def test_mail_settings_unset_locally_are_removed_from_the_server(self):
        with_password = fabfile.dotenv_values_for(make_site(), {}, MAIL_ENV)
        without = {k: v for k, v in MAIL_ENV.items() if k != "EMAIL_PASSWORD"}
        values = fabfile.dotenv_values_for(make_site(), with_password, without)
        self.assertNotIn("EMAIL_PASSWORD", values)

    def test_writing_the_same_values_twice_gives_the_same_text(self):
        first = format_dotenv(fabfile.dotenv_values_for(make_site(), {}, MAIL_ENV))
        again = fabfile.dotenv_values_for(make_site(), parse_dotenv(first), MAIL_ENV)
        self.assertEqual(format_dotenv(again), first)


class MailSettingsTest(unittest.TestCase):
    def test_missing_email_host_is_refused_with_a_sentence_naming_it(self):
        with self.assertRaisesRegex(fabfile.DeployError, "^EMAIL_HOST is not set"):
            fabfile._passed_through_settings({"EMAIL_PASSWORD": "x"})

    def test_missing_email_password_is_allowed_with_a_warning(self):
        stderr = io.StringIO()
        with redirect_stderr(stderr):
            values = fabfile._passed_through_settings({"EMAIL_HOST": "mail"})
        self.assertEqual(values, {"EMAIL_HOST": "mail"})
        self.assertIn("EMAIL_PASSWORD is not set", stderr.getvalue())

    def test_server_ca_bundle_is_written_as_ssl_cert_file(self):
        env = {**MAIL_ENV, "SERVER_SSL_CERT_FILE": "/srv/ca.pem", "SSL_CERT_FILE": "/local"}
        self.assertEqual(fabfile._passed_through_settings(env)["SSL_CERT_FILE"], "/srv/ca.pem")


class StepsTest(unittest.TestCase):
    def test_update_dotenv_writes_the_releases_own_env_quoted_and_nothing_when_unchanged(self):
        passed = {**MAIL_ENV, "DEFAULT_FROM_EMAIL": 'Superlists "bot" <a=b@example.com>'}
        with tempfile.TemporaryDirectory() as home:
            site = site_in(home)
            env = Path(site.paths.release("abc123def456"), ".env")
            env.parent.mkdir(parents=True)
            c = LocalHost()
            self.assertTrue(fabfile._update_dotenv(c, site, make_release(), passed))
            values, mode = parse_dotenv(env.read_text()), stat.S_IMODE(env.stat().st_mode)
            # Live: what the release wrote is what the site reads, so a deploy changes nothing.
            Path(site.paths.source).symlink_to(env.parent)
            Path(site.paths.env).symlink_to("source/.env")
            written = env.stat().st_mtime_ns
            self.assertFalse(fabfile._update_dotenv(LocalHost(), site, make_release(), passed))
            self.assertEqual(env.stat().st_mtime_ns, written)
        self.assertEqual(mode, 0o600)
        self.assertEqual(values["EMAIL_PASSWORD"], MAIL_ENV["EMAIL_PASSWORD"])
        self.assertEqual(values["DEFAULT_FROM_EMAIL"], passed["DEFAULT_FROM_EMAIL"])
        # The secrets go on stdin: never on a command line (ps, or the error when it fails).
        self.assertEqual([run for run in c.ran if "pa ss" in run], [])

    def test_a_failed_script_is_shown_by_its_name_not_its_text(self):
        command = remote.script("prune_releases.py", "/srv/releases", "/srv/venvs", "abc")
        failed = Result(command=command, stdout="prune_releases: could not remove /srv/x\n")
        failed.exited = 1
        said = fabfile._say(UnexpectedExit(failed))
        self.assertTrue(said.startswith("a command failed on the server (exit status 1): prune"))
        self.assertEqual(
            said.splitlines()[-1],
            "  (the command: /usr/bin/python3 -c <prune_releases.py> /srv/releases /srv/venvs abc)",
        )

    def test_a_failed_write_names_the_file_but_never_prints_what_was_sent(self):
        channel = mock.Mock()
        channel.recv_exit_status.return_value = 1
        channel.makefile_stderr.return_value.read.return_value = b"cat: Permission denied\n"
        conn = mock.Mock(create_session=mock.Mock(return_value=channel))
        with self.assertRaises(fabfile.DeployError) as raised:
            remote.write_file(conn, f"{SITE_ROOT}/.env", "EMAIL_PASSWORD='s3cret'\n", "600")
        self.assertIn(f"Writing {SITE_ROOT}/.env on the server failed", str(raised.exception))
        self.assertNotIn("s3cret", str(raised.exception))
        (command,) = channel.exec_command.call_args.args
        self.assertNotIn("s3cret", command)
        channel.sendall.assert_called_once_with(b"EMAIL_PASSWORD='s3cret'\n")

    def test_a_release_gets_the_venv_of_its_requirements_built_once_beside_the_live_one(self):
        release = make_release(b"")  # nothing to install: no network needed
        with tempfile.TemporaryDirectory() as home:
            site = site_in(home)
            folder = Path(site.paths.release(release.name))
            folder.mkdir(parents=True)
            (folder / "requirements.txt").write_text("")
            self.assertTrue(fabfile._build_virtualenv(LocalHost(), site, release))
            venv = Path(site.paths.venvs, release.requirements_hash[:16])
            self.assertEqual((folder / ".venv").readlink(), venv)
            self.assertTrue((venv / ".complete").exists())
            self.assertTrue((venv / "bin" / "python").exists())
            # The next release with the same requirements gets the same venv, not built again.
            other = Path(site.paths.release("0ther0ther00"))
            other.mkdir()
            (other / "requirements.txt").write_text("")
            again = releases.Release("0ther0ther00", release.archive, release.requirements_hash)
            self.assertFalse(fabfile._build_virtualenv(LocalHost(), site, again))
            self.assertEqual((other / ".venv").readlink(), venv)

    def test_upload_is_skipped_when_the_release_is_already_on_the_server(self):
        with tempfile.TemporaryDirectory() as home:
            site = site_in(home)
            self.assertTrue(fabfile._upload_source(LocalHost(), site, make_release()))
            self.assertFalse(fabfile._upload_source(LocalHost(), site, make_release()))

    def test_a_new_release_is_unpacked_beside_the_live_one_without_switching(self):
        with tempfile.TemporaryDirectory() as home:
            site = site_in(home)
            live = Path(site.paths.release("0ld0ld0ld0ld"))
            live.mkdir(parents=True)
            Path(site.paths.source).symlink_to("releases/0ld0ld0ld0ld")
            self.assertTrue(fabfile._upload_source(LocalHost(), site, make_release()))
            folder = Path(site.paths.release("abc123def456"))
            unpacked = sorted(path.name for path in folder.iterdir())
            releases_left = sorted(path.name for path in live.parent.iterdir())
            source = Path(site.paths.source).readlink()
        self.assertEqual(unpacked, [".complete", "requirements.txt"])
        self.assertEqual(releases_left, ["0ld0ld0ld0ld", "abc123def456"])  # no .partial left
        self.assertEqual(source, Path("releases/0ld0ld0ld0ld"))

    def test_the_switch_moves_the_link_to_a_built_release_and_says_how_to_reload(self):
        with tempfile.TemporaryDirectory() as home:
            site = site_in(home)
            for name, venv, built in (("aaa", "v1", 1), ("bbb", "v1", 1), ("ccc", "v2", 1),
                                      ("ddd", "v2", 0)):  # fmt: skip
                folder = Path(site.paths.release(name))
                folder.mkdir(parents=True)
                (folder / ".venv").symlink_to(Path(site.paths.venvs, venv))
                if built:
                    (folder / fabfile.BUILT).touch()
            source, env = Path(site.paths.source), Path(site.paths.env)
            went = []
            for name in ("aaa", "bbb", "ccc", "ccc"):
                how = fabfile._switch(LocalHost(), site, name)
                went.append((name, how, str(source.readlink()), str(env.readlink())))
            with self.assertRaises(UnexpectedExit):
                fabfile._switch(LocalHost(), site, "ddd")
            still = str(source.readlink())
        self.assertEqual(
            went,
            [
                ("aaa", "restart", "releases/aaa", "source/.env"),  # nothing was running
                ("bbb", "hup", "releases/bbb", "source/.env"),  # the same venv
                ("ccc", "restart", "releases/ccc", "source/.env"),  # new libraries
                ("ccc", "", "releases/ccc", "source/.env"),  # already live
            ],
        )
        self.assertEqual(still, "releases/ccc")  # ddd never finished building

    def test_gunicorn_not_running_the_release_everywhere_fails_saying_where_it_runs(self):
        c = server((r"gunicorn_workers", "2\n", 0))
        self.assertEqual(fabfile._reload_gunicorn(c, make_site(), "abc123def456", "hup"), 2)
        said = f"master 12; 1 of 2 workers still in: {SITE_ROOT}/releases/old"
        stuck = server((r"gunicorn_workers", said + "\n", 1))
        with self.assertRaises(fabfile.DeployError) as raised:
            fabfile._reload_gunicorn(stuck, make_site(), "abc123def456", "hup")
        self.assertEqual(
            str(raised.exception), f"gunicorn did not come up on abc123def456 within 30 s ({said})"
        )

    def test_check_deploy_allows_only_the_https_only_warnings_on_a_plain_http_site(self):
        https_only = "WARNINGS:\n?: (security.W004) You have not set SECURE_HSTS_SECONDS.\n"
        other = https_only + "?: (security.W009) Your SECRET_KEY has less than 50 characters.\n"
        tls = {"tls_cert": "/c.pem", "tls_key": "/k.pem"}
        for output, options, refused in (
            (https_only, {}, None),
            (other, {}, "security.W009"),
            (https_only, tls, "security.W004"),
        ):
            with self.subTest(refused=refused, tls=bool(options)):
                c = server((r"check --deploy", output, 0), (r"makemigrations", "", 0))
                if refused is None:
                    fabfile._check_release(c, make_site(**options), make_release())
                    continue
                with self.assertRaisesRegex(fabfile.DeployError, rf"\({refused}\)"):
                    fabfile._check_release(c, make_site(**options), make_release())

    def test_a_model_change_without_its_migration_names_the_uncommitted_file(self):
        said = "Migrations for 'lists':\n  lists/migrations/0005_item_note.py\n    + Add field"
        c = server((r"check --deploy", "", 0), (r"makemigrations --check", said, 1))
        hint = "lists/migrations/0005_item_note.py is in your working tree but not committed."
        with (
            mock.patch.object(releases, "uncommitted_migrations", return_value=[hint]),
            self.assertRaises(fabfile.DeployError) as raised,
        ):
            fabfile._check_release(c, make_site(), make_release())
        self.assertIn("makemigrations --check", str(raised.exception))
        self.assertIn(hint, str(raised.exception))

    def test_a_destructive_migration_needs_the_flag_unless_nothing_is_live(self):
        plan = '[{"migration": "lists.0005_remove_item_note", "breaks": ["removes the column"]}]'
        c = server((r"migration_check", plan, 0))
        with self.assertRaisesRegex(fabfile.DeployError, "removes the column.*--allow-destructive"):
            quietly(fabfile._plan_migrations, c, make_site(), make_release(), "0ld", False)
        for live, allowed in (("0ld", True), ("", False)):
            self.assertEqual(
                quietly(fabfile._plan_migrations, c, make_site(), make_release(), live, allowed),
                ["lists.0005_remove_item_note"],
            )

    def test_an_nginx_configuration_refused_on_reload_is_undone_and_fails_the_deploy(self):
        emerg = '[emerg] 12#12: cannot load certificate "/nonexistent.pem"'
        # Root's nginx is not this test's: its answer to the reload is given.
        for init, reload in (("supervisor", "nginx_reload"), ("systemd", "nginx -t")):
            for previous in ("server { listen 80; }\n", ""):
                with (
                    self.subTest(init=init, previous=previous),
                    tempfile.TemporaryDirectory() as home,
                ):
                    site = site_in(home, init)
                    conf = Path(site.paths.nginx_conf)
                    conf.parent.mkdir(parents=True)
                    conf.write_text("server { listen 443 ssl; }\n")
                    with (
                        mock.patch.object(site.services, "remove_nginx_link") as unlink,
                        self.assertRaisesRegex(
                            fabfile.DeployError,
                            r"refused .*nonexistent\.pem.*(previous one is back|It was removed)",
                        ),
                    ):
                        fabfile._reload_nginx(LocalHost(**{reload: (emerg, 1)}), site, previous)
                    if previous:
                        self.assertEqual(conf.read_text(), previous)
                        unlink.assert_not_called()
                    else:  # the link root's nginx includes goes with it
                        self.assertFalse(conf.exists())
                        self.assertEqual(unlink.call_args.args[1], site)
        with tempfile.TemporaryDirectory() as home:
            site = site_in(home, "supervisor")
            conf = Path(site.paths.nginx_conf)
            conf.parent.mkdir(parents=True)
            conf.write_text("server { listen 443 ssl; }\n")
            fabfile._reload_nginx(LocalHost(nginx_reload=("", 0)), site, "")
            self.assertEqual(conf.read_text(), "server { listen 443 ssl; }\n")  # nothing undone

    def test_a_site_that_does_not_answer_through_nginx_fails_its_health_check(self):
        site = make_site(listen_address="127.0.0.2", port=8080)
        c = server(
            (r"python3 -c .*smoke_check", "ConnectionRefusedError: [Errno 111] refused\n", 1)
        )
        with self.assertRaisesRegex(
            fabfile.HealthCheckFailed,
            r"http://127\.0\.0\.2:8080/ \(Host: staging\.example\.com\) answered "
            r"ConnectionRefusedError",
        ):
            fabfile._check_live(c, site)
        tls = make_site(tls_cert="/etc/ssl/site.pem", tls_key="/etc/ssl/site.key", port=443)
        answered = fabfile._check_live(server((r"python3 -c .*smoke_check", "HTTP 200\n", 0)), tls)
        self.assertEqual(answered, "HTTP 200")


class DeployTaskTest(unittest.TestCase):
    """The whole deploy task, its connection and release replaced by fakes."""

    def deploy(self, answers, **options):
        """fab deploy; what it printed is kept, and the files it wrote, by path."""
        c = self.context = server(*answers)
        self.written, printed = {}, io.StringIO()

        def write(conn, path, text, mode="644"):
            self.written[str(path)] = text

        try:
            with (
                mock.patch.object(fabfile, "_connect", return_value=c),
                mock.patch.object(releases, "build", return_value=make_release()),
                mock.patch.object(remote, "pipe") as self.piped,
                mock.patch.object(remote, "write_file", side_effect=write),
                mock.patch.dict(fabfile.os.environ, MAIL_ENV, clear=True),
                redirect_stdout(printed),
                redirect_stderr(io.StringIO()),
            ):
                fabfile.deploy(Context(), sitename="staging.example.com", **options)
        finally:
            self.printed = printed.getvalue()
        return commands(c)

    def steps(self):
        """The steps the deploy said it took, in order."""
        return re.findall(r"^  (.+): (?:FAILED after )?[\d.]+ s$", self.printed, re.M)

    def host_facts(self):
        return (r"^echo \$HOME", f"{HOME}\nsuperlists\nsupervisor\n", 0)

    def test_first_deploy_builds_and_checks_the_release_before_switching_to_it(self):
        plan = '[{"migration": "lists.0001_initial", "breaks": []}]'
        self.deploy(
            [
                self.host_facts(),
                (r"smoke_check", "HTTP 200\n", 0),
                (r"^readlink ", "", 0),
                (r"^test -f .*\.complete", "", 1),
                (r"^test -f .*\.built", "", 1),
                (r"migration_check", plan, 0),
                (r"old=\$\(readlink source", "restart\n", 0),
                (r"gunicorn_workers", "3\n", 0),
                (r"^cat ", "", 0),
                (r"", "", 0),
            ],
            staging=True,
            workers=3,
        )
        self.assertEqual(
            self.steps(),
            [
                "make the site's folders",
                "upload the source",
                "build the virtualenv",
                "write the release's .env",
                "collect static files",
                "check the release",
                "plan the migrations",
                "migrate the database",
                "switch to the release",
                "update the gunicorn service and nginx site",
                "reload gunicorn",
                "check the site answers through nginx",
                "preflight: settings, host, migrations, static files, workers",
                "remove old releases",
            ],
        )
        release = f"{SITE_ROOT}/releases/abc123def456"
        self.assertEqual(parse_dotenv(self.written[f"{release}/.env"])["SUPERLISTS_STAGING"], "1")
        self.assertIn("--workers 3", self.written[f"{SITE_ROOT}/supervisor.conf"])
        self.assertEqual(
            parse_dotenv(self.written[f"{SITE_ROOT}/site.env"]),
            {"SCHEME": "http", "ADDRESS": "127.0.0.1", "PORT": "80"},
        )
        self.assertIn(
            "Deployed abc123def456 to http://staging.example.com (staging) (HTTP 200)",
            self.printed,
        )

    def test_redeploy_with_no_change_skips_the_build_and_writes_nothing(self):
        site = make_site(staging=False)
        env_text = format_dotenv(
            fabfile.dotenv_values_for(site, {}, MAIL_ENV), header=fabfile.ENV_HEADER
        )
        release = f"{SITE_ROOT}/releases/abc123def456"
        reload = mock.patch.object(fabfile, "_reload_gunicorn", wraps=fabfile._reload_gunicorn)
        with reload as reloaded:
            self.deploy(
                [
                    self.host_facts(),
                    (r"^readlink ", "releases/abc123def456\n", 0),
                    (r"^test -f .*\.complete", "", 0),
                    (r"^test -f .*\.built", "", 0),
                    (r"^test -L", "", 1),
                    (rf"^cat ({SITE_ROOT}|{release})/\.env ", env_text, 0),
                    (rf"^cat {SITE_ROOT}/site\.env", fabfile._site_settings(site), 0),
                    # Planned even for the same release (the .env may name a new database).
                    (r"\.venv/bin/python -c .* plan$", "[]\n", 0),
                    (r"old=\$\(readlink source", "same\n", 0),
                    (rf"^cat {SITE_ROOT}/nginx\.conf", fabfile.render_nginx_site(site), 0),
                    (rf"^cat {SITE_ROOT}/supervisor\.conf", fabfile.render_service(site), 0),
                    (r"gunicorn_workers", "2\n", 0),
                    (r"", "", 0),
                ],
            )
        # (The venv command runs pip only when the venv is not complete: tested above.)
        for work in ("collect static files", "check the release"):
            self.assertNotIn(work, self.steps())
        # Planned even so: the .env may name another database, with none of them applied.
        self.assertIn("plan the migrations", self.steps())
        self.assertEqual((self.written, self.piped.call_count), ({}, 0))
        # Nothing switched: gunicorn is only asked whether its workers run the release.
        self.assertEqual(reloaded.call_args.args[2:], ("abc123def456", ""))

    def test_a_release_that_fails_to_build_changes_nothing_and_says_so_first(self):
        said = "Traceback (most recent call last):\n  File x\nFileNotFoundError: broken.css\n"
        failed = Result(command="manage.py collectstatic", stderr=said)
        failed.exited = 1
        answers = [
            self.host_facts(),
            (r"^readlink ", "releases/0ld0ld0ld0ld\n", 0),
            (r"^test -f .*\.complete", "", 1),
            (r"^test -f .*\.built", "", 1),
            (r"", "", 0),
        ]
        with (
            mock.patch.object(fabfile, "_collect_static", side_effect=UnexpectedExit(failed)),
            self.assertRaises(Exit) as raised,
        ):
            self.deploy(answers)
        first_lines = raised.exception.message.splitlines()[:2]
        self.assertIn("at step 'collect static files'", first_lines[0])
        self.assertIn("FileNotFoundError: broken.css", first_lines[0])
        self.assertEqual(
            first_lines[1], "Nothing changed on the server: 0ld0ld0ld0ld is still live."
        )

    def test_a_release_that_fails_its_health_check_is_switched_back_with_its_log(self):
        failure = fabfile.HealthCheckFailed("/ answered HTTP 500 request-id=abc", "HTTP 500")
        record = (
            "+0000\n==> superlists-log all error.log\n"
            "2026-12-03 10:00:00,123 ERROR django.request [req=abc ip=1] Internal Server Error\n"
            "Traceback (most recent call last):\nRuntimeError: boom\n"
        )
        with (
            mock.patch.object(fabfile, "_check_live", side_effect=[failure, "HTTP 200"]),
            self.assertRaises(Exit) as raised,
        ):
            self.deploy(
                [
                    self.host_facts(),
                    (r"^readlink ", "releases/0ld0ld0ld0ld\n", 0),
                    (r"^test -f", "", 0),
                    (r"migration_check", "[]", 0),
                    (r"old=\$\(readlink source", "hup\n", 0),
                    (r"gunicorn_workers", "2\n", 0),
                    (r"^date \+%z", record, 0),
                    (r"", "", 0),
                ],
            )
        message = raised.exception.message
        self.assertIn("abc123def456 failed its health check", message)
        self.assertIn("HTTP 500 request-id=abc (RuntimeError: boom)", message)
        self.assertIn(
            "Switched back automatically: 0ld0ld0ld0ld is live again (it answers HTTP 200)",
            message,
        )
        self.assertEqual("error.log: RuntimeError: boom", message.splitlines()[-1])

    def test_a_failed_step_is_named_with_its_task_and_what_the_server_said(self):
        failed = Result(command="manage.py migrate", stderr="OperationalError: no such table\n")
        failed.exited = 1
        with (
            mock.patch.object(fabfile, "_migrate", side_effect=UnexpectedExit(failed)),
            self.assertRaises(Exit) as raised,
        ):
            self.deploy([self.host_facts(), (r"migration_check", "[]", 0), (r"", "", 0)])
        self.assertIn(
            "fab deploy failed at step 'migrate the database': ", raised.exception.message
        )
        self.assertIn("no such table", raised.exception.message)

    def test_a_preflight_problem_fails_the_deploy_with_the_preflight_screen(self):
        screen = "Preflight of staging.example.com (not staging, site id 1234):\n  - DEBUG is on"
        answers = [
            self.host_facts(),
            (r"manage\.py preflight", screen, 1),
            (r"migration_check", "[]", 0),
            (r"gunicorn_workers", "2\n", 0),
            (r"", "", 0),
        ]
        with self.assertRaises(Exit) as raised:
            self.deploy(answers)
        message = raised.exception.message
        self.assertIn("fab deploy failed at step 'preflight: settings, host, migrations", message)
        self.assertIn(screen, message)

    def test_a_missing_email_host_stops_the_deploy_before_the_server_is_touched(self):
        c = server((r"", "", 0))
        with (
            mock.patch.object(fabfile, "_connect", return_value=c),
            mock.patch.dict(fabfile.os.environ, {}, clear=True),
            self.assertRaisesRegex(Exit, "EMAIL_HOST is not set"),
        ):
            fabfile.deploy(Context())
        self.assertEqual(commands(c), [])


class RefusalTest(unittest.TestCase):
    def test_every_task_refuses_to_run_without_a_host(self):
        for task, args in (
            (fabfile.deploy, ()),
            (fabfile.provision, ()),
            (fabfile.logs, ()),
            (fabfile.manage, ("check",)),
            (fabfile.provision_database, ()),
        ):
            with self.subTest(task=task.name), self.assertRaises(Exit) as raised:
                task(Context(), *args)
            self.assertIn("name it with -H", str(raised.exception.message))

    def test_a_bad_site_name_is_refused_with_a_sentence(self):
        with self.assertRaisesRegex(ValueError, "not a usable site name"):
            SitePaths("../etc", HOME)

    def test_too_few_workers_is_refused(self):
        c = server((r"", "", 0))
        with self.assertRaisesRegex(fabfile.DeployError, "at least 2"):
            fabfile._site(c, "", 1, 0, "", "", "", "")


class TemplatesTest(unittest.TestCase):
    def test_supervisor_program_runs_gunicorn_as_the_deploy_user_with_its_own_home(self):
        text = fabfile.render_service(make_site(workers=4))
        self.assertIn("[program:gunicorn-staging_example_com]", text)
        self.assertIn("user=superlists", text)
        self.assertIn(f'HOME="{SITE_ROOT}"', text)
        self.assertIn("--workers 4", text)
        self.assertIn(f"--bind unix:{SITE_ROOT}/gunicorn.sock", text)

    def test_nginx_site_is_ready_for_tls(self):
        text = fabfile.render_nginx_site(make_site(tls_cert="/c.pem", tls_key="/k.pem", port=443))
        self.assertIn("listen 443 ssl;", text)
        self.assertIn("ssl_certificate_key /k.pem;", text)
        # To the site's own name: never to whatever Host a client sent.
        self.assertIn("return 301 https://staging.example.com$request_uri;", text)

    def test_root_includes_only_sites_linked_in_the_folder_root_made_for_a_user(self):
        with tempfile.TemporaryDirectory() as tmp:
            sites_dir = Path(tmp, "etc", "superlists", "sites")
            (sites_dir / "superlists").mkdir(parents=True)
            site = site_in(f"{tmp}/home", "supervisor")
            Path(site.paths.root).mkdir(parents=True)
            with mock.patch.object(sitepaths, "HOST_SITES_DIR", PurePosixPath(sites_dir)):
                # Root's nginx is not this test's: its answer to the reload is given.
                fabfile._update_services(LocalHost(nginx_reload=("", 0)), site)
            included = {}
            for template in ("nginx-host.conf", "supervisord-host.conf"):
                text = fabfile.render(
                    template, run_dir="/run/superlists", deploy_user="superlists",
                    sites_dir=sites_dir,
                )  # fmt: skip
                self.assertNotIn("/home/", text)
                for pattern in re.findall(rf"{re.escape(str(sites_dir))}/\S+\.conf", text):
                    included.update({name: Path(name).resolve() for name in glob.glob(pattern)})
        self.assertEqual(
            sorted(included.values()),
            [Path(site.paths.nginx_conf), Path(site.paths.supervisor_conf)],
        )

    def test_provision_refuses_a_host_where_root_made_no_folder_or_group_for_the_user(self):
        for failing, says in (("test -d", "install -d -o superlists"), ("id -nG", "usermod -aG")):
            c = server((failing, "", 1), (r"", "", 0))
            with self.subTest(failing=failing), self.assertRaisesRegex(fabfile.DeployError, says):
                fabfile._check_host(c, make_site())

    def test_the_service_fails_closed_and_keeps_its_files_private(self):
        for init, umask in (("supervisor", "umask=077"), ("systemd", "UMask=0077")):
            text = fabfile.render_service(make_site(init=init))
            # Without .env the settings then refuse to start, instead of serving DEBUG pages.
            self.assertRegex(text, r'DJANGO_DEBUG_FALSE="?1"?')
            self.assertIn(umask, text)
            self.assertIn("--umask 007", text)  # the socket: srwxrwx---
            self.assertIn("--logger-class superlists.gunicorn_logging.PathOnlyLogger", text)

    @unittest.skipUnless(shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), "no nginx")
    def test_nginx_accepts_the_rendered_site(self):
        with tempfile.TemporaryDirectory() as tmp:
            site = fabfile.Site(SitePaths("staging.example.com", tmp), "root", "supervisor")
            conf = Path(tmp) / "nginx.conf"
            conf.write_text(
                f"pid {tmp}/nginx.pid; error_log {tmp}/error.log; events {{}}\n"
                f"http {{ include {site.paths.nginx_conf}; }}\n"
            )
            Path(str(site.paths.logs)).mkdir(parents=True, exist_ok=True)
            Path(str(site.paths.nginx_conf)).write_text(fabfile.render_nginx_site(site))
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            result = subprocess.run(
                [nginx, "-t", "-q", "-c", str(conf), "-p", tmp, "-e", f"{tmp}/error.log"],
                capture_output=True,
                text=True,
                check=False,
            )
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_systemd_unit_passes_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze is not installed (apt-get install systemd)")
        with tempfile.TemporaryDirectory() as tmp:
            site = fabfile.Site(SitePaths("staging.example.com", tmp), "root", "systemd")
            # verify checks that the paths in the unit exist.
            gunicorn = Path(str(site.paths.venv)) / "bin" / "gunicorn"
            gunicorn.parent.mkdir(parents=True)
            gunicorn.write_text("#!/bin/sh\n")
            gunicorn.chmod(0o755)
            Path(str(site.paths.source)).mkdir(parents=True, exist_ok=True)
            unit = Path(tmp) / f"{site.paths.service}.service"
            unit.write_text(fabfile.render_service(site))
            result = subprocess.run(
                [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
            )
            self.assertEqual((result.returncode, result.stderr.strip()), (0, ""))
            logs = f"StandardOutput=append:{site.paths.logs}/gunicorn-systemd.log"
            self.assertIn(logs, unit.read_text())


class WorktreeArchiveTest(unittest.TestCase):
    def test_archive_leaves_out_local_state_and_is_reproducible(self):
        archive = releases.worktree_archive()
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            names = tar.getnames()
        self.assertIn("manage.py", names)
        self.assertIn("requirements.txt", names)
        self.assertFalse([n for n in names if n.startswith(".venv/") or n.endswith(".env")])
        self.assertFalse([n for n in names if "__pycache__" in n or n.endswith("db.sqlite3")])
        self.assertEqual(releases.worktree_archive(), archive)


class RootFabfileTest(unittest.TestCase):
    def test_fab_from_the_repository_root_finds_every_task(self):
        expected = Collection.from_module(fabfile).task_names
        self.assertEqual(Collection.from_module(root_fabfile).task_names, expected)


STATE = f"""live=releases/c0ffee000003
release=c0ffee000001 built 1000
release=c0ffee000002 built 2000
release=c0ffee000003 built 3000
release=bad000000004 unbuilt 4000
log=2026-12-01T10:00:00Z\tdeployed\tc0ffee000001\tedith@laptop\tFirst
log=2026-12-02T10:00:00Z\tdeployed\tc0ffee000002\tedith@laptop\tSecond
log=2026-12-02T11:00:00Z\tfailed to build (collect static files)\tbad000000004\tedith@laptop\tBad
log=2026-12-03T10:00:00Z\tdeployed\tc0ffee000003\toni@desktop\tThird
master=100
worker=101 {SITE_ROOT}/releases/c0ffee000003
worker=102 {SITE_ROOT}/releases/c0ffee000003
"""


def lay_out_site(home, live="c0ffee000003", exists=False):
    """STATE's site for real in a temporary home: releases, their venvs, deploy log, live link."""
    site = fabfile.Site(SitePaths("staging.example.com", home), "superlists", "systemd")
    if exists:
        return site
    p = site.paths
    for kind, _, rest in (line.partition("=") for line in STATE.splitlines()):
        if kind == "release":
            name, built, mtime = rest.split()
            folder, venv = (
                Path(p.release(name)),
                Path(p.venvs, "bad" if name.startswith("bad") else "good"),
            )
            folder.mkdir(parents=True)
            venv.mkdir(parents=True, exist_ok=True)
            (folder / ".venv").symlink_to(venv)
            if built == "built":
                (folder / fabfile.BUILT).touch()
            os.utime(folder, (int(mtime), int(mtime)))
        elif kind == "log":
            with open(p.deploy_log, "a") as log:
                log.write(rest + "\n")
    if live:
        Path(p.source).symlink_to(f"releases/{live}")
    return site


class ServerStateTest(unittest.TestCase):
    def test_status_says_what_is_live_from_where_and_what_could_be_made_live(self):
        state = fabfile.ServerState.parse(STATE)
        text = state.describe(make_site(), "HTTP 200 request-id=1")
        self.assertIn("Live on http://staging.example.com: c0ffee000003 Third", text)
        self.assertIn("deployed 2026-12-03T10:00:00Z from oni@desktop", text)
        self.assertIn("bad000000004  1970-01-01 01:06  Bad  (never finished building", text)
        self.assertIn("gunicorn: master 100, 2 workers running c0ffee000003", text)
        self.assertIn("Home page through nginx: HTTP 200 request-id=1", text)

    def test_rollback_goes_to_the_release_live_before_or_the_one_named(self):
        state = fabfile.ServerState.parse(STATE)
        self.assertEqual(fabfile._rollback_target(state, ""), "c0ffee000002")
        self.assertEqual(fabfile._rollback_target(state, "c0ffee000001"), "c0ffee000001")
        full_sha = "c0ffee000001" + "9" * 28
        self.assertEqual(fabfile._rollback_target(state, full_sha), "c0ffee000001")
        for to, refusal in (
            ("c0ffee00000", "several releases"),
            ("c0ffee000003", "already live"),
            ("bad0", "never finished building"),
            ("deadbeef", "No kept release matches 'deadbeef'"),
        ):
            with self.subTest(to=to), self.assertRaisesRegex(fabfile.DeployError, refusal):
                fabfile._rollback_target(state, to)
        rolled_back = fabfile.ServerState.parse(
            STATE.replace("live=releases/c0ffee000003", "live=releases/c0ffee000002")
            + "log=2026-12-03T11:00:00Z\trolled back\tc0ffee000002\toni@desktop\tSecond\n"
        )
        self.assertEqual(fabfile._rollback_target(rolled_back, ""), "c0ffee000003")

    def test_the_state_is_read_from_the_sites_folders_and_deploy_log(self):
        with tempfile.TemporaryDirectory() as home:
            site = lay_out_site(home)
            state = fabfile._server_state(Context(), site)
        expected = fabfile.ServerState.parse(STATE)
        self.assertEqual(
            (state.live, state.releases, state.log),
            (expected.live, expected.releases, expected.log),
        )
        # No gunicorn runs for this site on this machine.
        self.assertEqual((state.master, state.workers), ("", []))

    def test_pruning_keeps_the_live_release_and_those_live_before_it_not_failed_ones(self):
        state = fabfile.ServerState.parse(STATE)
        self.assertEqual(state.kept_for_rollback(2), ["c0ffee000003", "c0ffee000002"])
        with tempfile.TemporaryDirectory() as home:
            p = lay_out_site(home).paths
            fabfile._prune_releases(Context(), lay_out_site(home, exists=True))
            releases, venvs = sorted(os.listdir(p.releases)), sorted(os.listdir(p.venvs))
        self.assertEqual(releases, ["c0ffee000001", "c0ffee000002", "c0ffee000003"])
        self.assertEqual(venvs, ["good"])

    def test_with_nothing_live_pruning_removes_nothing(self):
        with tempfile.TemporaryDirectory() as home:
            p = lay_out_site(home, live="").paths
            fabfile._prune_releases(Context(), lay_out_site(home, exists=True))
            releases, venvs = sorted(os.listdir(p.releases)), sorted(os.listdir(p.venvs))
        self.assertEqual(len(releases), 4)
        self.assertEqual(venvs, ["bad", "good"])


class RollbackTaskTest(unittest.TestCase):
    def rollback(self, home, answers, **options):
        """fab rollback on STATE's site in home; gunicorn and the release's venv answered."""
        site = lay_out_site(home)
        Path(site.paths.site_settings).write_text(fabfile._site_settings(site))
        c = LocalHost(
            **{r"^echo \$HOME": (f"{home}\nsuperlists\nsystemd\n", 0), "' reload ": ("2\n", 0)},
            **answers,
        )
        with (
            mock.patch.object(fabfile, "_connect", return_value=c),
            mock.patch.object(fabfile, "_check_live", return_value="HTTP 200"),
        ):
            quietly(fabfile.rollback, Context(), sitename="staging.example.com", **options)
        return site

    def test_migrations_the_target_does_not_know_need_yes(self):
        unknown = {"migration_check": ('["lists.0005_item_note"]', 0)}
        with tempfile.TemporaryDirectory() as home:
            with self.assertRaises(Exit) as raised:
                self.rollback(home, unknown)
            still = Path(home, "sites/staging.example.com/source").readlink()
        self.assertIn("c0ffee000002 does not know these migrations", raised.exception.message)
        self.assertIn("lists.0005_item_note", raised.exception.message)
        self.assertIn("--yes", raised.exception.message)
        self.assertEqual(still, Path("releases/c0ffee000003"))
        with tempfile.TemporaryDirectory() as home:
            site = self.rollback(home, unknown, yes=True)
            live = Path(site.paths.source).readlink()
            last = Path(site.paths.deploy_log).read_text().splitlines()[-1].split("\t")
        self.assertEqual(live, Path("releases/c0ffee000002"))
        self.assertEqual(last[1:3], ["rolled back", "c0ffee000002"])


class UncommittedMigrationsTest(unittest.TestCase):
    def test_migration_files_left_out_of_the_commit_are_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            git = ["git", "-C", tmp, "-c", "user.name=t", "-c", "user.email=t@x.test"]
            migrations = Path(tmp) / "lists" / "migrations"
            migrations.mkdir(parents=True)
            (migrations / "0001_initial.py").write_text("# one\n")
            (Path(tmp) / "requirements.txt").write_text("Django\n")
            subprocess.run([*git, "init", "-q"], check=True)
            subprocess.run([*git, "add", "-A"], check=True)
            subprocess.run([*git, "commit", "-qm", "one"], check=True)
            (migrations / "0002_item_note.py").write_text("# two\n")
            (migrations / "0001_initial.py").write_text("# one, changed\n")
            with mock.patch.object(releases, "REPO", Path(tmp)):
                release = releases.build()
                found = releases.uncommitted_migrations(release)
        self.assertEqual(
            found,
            [
                "lists/migrations/0001_initial.py has changes in your working tree that are "
                "not committed.",
                "lists/migrations/0002_item_note.py is in your working tree but not committed.",
            ],
        )


class LogsTaskTest(unittest.TestCase):
    def test_each_request_is_shown_once_with_its_whole_traceback(self):
        error = (
            "2026-12-03 10:00:01,000 ERROR django.request [req=ab12 ip=1.2.3.4 GET / user=-] "
            "Internal Server Error: /\nTraceback (most recent call last):\n"
            '  File "views.py", line 3, in home_page\nRuntimeError: boom\n'
        )
        access = '1.2.3.4 - - [03/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 500 10\n'
        output = (
            "+0000\n"
            f"==> superlists-log all nginx-access.log\n{access}\n"
            f"==> superlists-log all gunicorn-access.log\n{access}\n"
            f"==> superlists-log all gunicorn.log\n{error}\n"
            f"==> superlists-log all error.log\n{error}\n"
        )
        c = server((r"^echo \$HOME", HOME, 0), (r"^date \+%z", output, 0))
        c.host = "web1.example.com"
        printed = io.StringIO()
        with mock.patch.object(fabfile, "_connect", return_value=c), redirect_stdout(printed):
            fabfile.logs(Context(), sitename="staging.example.com")
        shown = printed.getvalue()
        self.assertEqual(shown.count('"GET / HTTP/1.1" 500'), 1, shown)
        self.assertEqual(shown.count("Internal Server Error"), 1, shown)
        self.assertIn('File "views.py", line 3, in home_page\n', shown)
        self.assertTrue(shown.rstrip().endswith("RuntimeError: boom"), shown)
        # Which host's logs: fab -H web1,web2 logs prints one after the other.
        self.assertTrue(shown.startswith("== staging.example.com on web1.example.com: "), shown)
