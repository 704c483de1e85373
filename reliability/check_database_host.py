"""fab provision-database's work for real, on this machine: a cluster of its own, who gets in.

It runs the task's functions through an invoke.Context (so as root, on Debian's PostgreSQL) on
127.0.0.6, a staging address of its own. Over loopback every client arrives from 127.0.0.1, so
that is the client allowed; what stays meaningful is that the site's role with its password
gets in and that a wrong password, another role and another database are refused.
"""

import shutil
import stat
import tempfile
import unittest
import warnings
from pathlib import Path

import psycopg
from invoke import Config, Context

from deploy_tools import database
from reliability.check_sqlite_to_postgres import move
from rigs.processes import free_port
from superlists.env import parse_dotenv

ADDRESS = "127.0.0.6"  # the scale-out rehearsal's database host is 127.0.0.4
CLIENT = "127.0.0.1"  # where every loopback connection comes from
# Never the task's own `superlists` (a rehearsal may have one up) nor Debian's `main`.
CLUSTER = "superlists_check"
SITENAME = "db-check.staging.test"


def clusters():
    return Context().run("pg_lsclusters --no-header", hide=True).stdout


def drop_cluster():
    found = database.find_cluster(clusters(), CLUSTER)
    if found:
        Context().run(f"pg_dropcluster --stop {found.version} {CLUSTER}", hide=True)
    shutil.rmtree(database.PASSWORDS / CLUSTER, ignore_errors=True)


def refusal(**connection):
    """What PostgreSQL says to a connection it refuses (the test fails if it lets it in)."""
    try:
        psycopg.connect(**connection, connect_timeout=10).close()
    except psycopg.OperationalError as error:
        return str(error)
    raise AssertionError(f"PostgreSQL let in {connection.get('user')}@{connection.get('dbname')}")


class DatabaseHostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # invoke's local runner leaves its pipes to the garbage collector: not ours to report.
        warnings.filterwarnings("ignore", "unclosed file <_io.FileIO", ResourceWarning)
        drop_cluster()  # what a run that was killed left
        cls.before = clusters()
        cls.addClassCleanup(drop_cluster)
        cls.port = free_port(ADDRESS)
        cls.runs = [
            database.provision(Context(), SITENAME, ADDRESS, [CLIENT], cls.port, CLUSTER)
            for _ in range(2)
        ]
        cls.url = cls.runs[0][0]
        cls.name = database.identifier_for(SITENAME)
        cls.password = psycopg.conninfo.conninfo_to_dict(cls.url)["password"]
        print(f"\n  first run: {'; '.join(cls.runs[0][1])}")

    def connection(self, **changes):
        return {
            "host": ADDRESS,
            "port": self.port,
            "user": self.name,
            "dbname": self.name,
            "password": self.password,
            **changes,
        }

    def test_a_second_run_changes_nothing_and_gives_the_same_url(self):
        (first_url, first), (second_url, second) = self.runs
        self.assertIn(f"created cluster 15/{CLUSTER} on {ADDRESS}:{self.port}", first)
        self.assertIn(f"created role {self.name}", first)
        self.assertEqual(second, [])
        self.assertEqual(second_url, first_url)

    def test_the_sites_role_gets_in_with_the_url_on_the_clusters_own_address(self):
        self.assertEqual(
            self.url,
            f"postgres://{self.name}:{self.password}@{ADDRESS}:{self.port}/{self.name}",
        )
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            row = conn.execute("SELECT current_user, current_database(), inet_server_addr()")
            user, name, server = row.fetchone()
        self.assertEqual((user, name, str(server)), (self.name, self.name, ADDRESS))

    def test_a_wrong_password_is_refused(self):
        said = refusal(**self.connection(password=self.password + "x"))
        self.assertIn(f'password authentication failed for user "{self.name}"', said)

    def test_another_database_is_refused_to_the_sites_role(self):
        said = refusal(**self.connection(dbname="postgres"))
        self.assertIn(f'pg_hba.conf rejects connection for host "{CLIENT}"', said)

    def test_another_role_is_refused_even_with_a_good_password(self):
        other = "check_other_role"
        host = database.Host(Context())
        found = database.find_cluster(clusters(), CLUSTER)
        cluster = database.Cluster(
            found.version, CLUSTER, self.port, True, str(database.SOCKETS / CLUSTER)
        )
        host.psql(cluster, f"CREATE ROLE {other} LOGIN PASSWORD '{self.password}'")
        self.addCleanup(host.psql, cluster, f"DROP ROLE {other}")
        for dbname in (self.name, "postgres"):
            with self.subTest(dbname=dbname):
                said = refusal(**self.connection(user=other, dbname=dbname))
                self.assertIn(f'pg_hba.conf rejects connection for host "{CLIENT}"', said)

    def test_it_listens_on_its_address_only(self):
        said = refusal(**self.connection(host="127.0.0.1"))
        self.assertIn("Connection refused", said)

    def test_the_password_is_kept_for_root_only(self):
        path = database.PASSWORDS / CLUSTER / self.name
        self.assertEqual(Path(path).read_text().strip(), self.password)
        for each, mode in ((path, 0o600), (path.parent, 0o700)):
            info = Path(each).stat()
            self.assertEqual((stat.S_IMODE(info.st_mode), info.st_uid), (mode, 0), each)

    def test_debians_other_clusters_are_left_as_they_were(self):
        others = [line.split() for line in clusters().splitlines() if f" {CLUSTER} " not in line]
        self.assertEqual(others, [line.split() for line in self.before.splitlines()])

    def test_a_sqlite_sites_data_moves_with_the_readme_commands_and_the_url_written(self):
        # The README's move: the task writes the app host's .env, the data follows.
        with tempfile.TemporaryDirectory() as home:
            app_host = Context(Config(overrides={"run": {"env": {"HOME": home}}}))
            database.write_database_url(app_host, SITENAME, self.url)
            env = parse_dotenv((Path(home) / "sites" / SITENAME / ".env").read_text())
            # As the site's own role, not a superuser: it owns its database, so it may migrate.
            before, after, _ = move(home, env["DATABASE_URL"])
        self.assertEqual(after, before)


if __name__ == "__main__":
    unittest.main()
