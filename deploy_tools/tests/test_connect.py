"""Unit tests for the host-key-verifying SSH connection factory and the site paths."""

import getpass
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

import paramiko
from fabric import Connection

from deploy_tools import connect, fabfile
from deploy_tools.sitepaths import SitePaths


def environ(tmp, **extra):
    return {"SUPERLISTS_KNOWN_HOSTS": str(Path(tmp) / "known_hosts"), **extra}


class ConnectionTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.key = paramiko.Ed25519Key.from_private_key_file(self.make_key())

    def make_key(self):
        path = Path(self.tmp) / "id_ed25519"
        # paramiko cannot generate ed25519 keys; ssh-keygen is part of openssh-client.
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        return str(path)

    def test_unknown_host_is_refused_with_how_to_trust_it(self):
        conn = connect.connection("superlists@127.0.0.2", environ(self.tmp))
        policy = conn.client._policy
        with self.assertRaises(connect.ConnectError) as raised:
            policy.missing_host_key(conn.client, "127.0.0.2", self.key)
        message = str(raised.exception)
        self.assertIn("is not in", message)
        self.assertIn("ssh-keyscan 127.0.0.2", message)
        self.assertIn("SUPERLISTS_ACCEPT_NEW_HOST=1", message)
        self.assertIn(self.key.fingerprint, message)

    def test_known_host_keys_are_loaded_from_the_configured_file(self):
        known = Path(self.tmp) / "known_hosts"
        known.write_text(f"127.0.0.2 {self.key.get_name()} {self.key.get_base64()}\n")
        conn = connect.connection("superlists@127.0.0.2", environ(self.tmp))
        self.assertEqual(conn.client.get_host_keys().lookup("127.0.0.2")["ssh-ed25519"], self.key)
        self.assertIsInstance(conn.client._policy, connect.RefuseUnknownHost)

    def test_accepting_a_new_host_is_opt_in_and_records_its_key(self):
        env = environ(self.tmp, SUPERLISTS_ACCEPT_NEW_HOST="1")
        conn = connect.connection("superlists@127.0.0.2", env)
        conn.client._policy.missing_host_key(conn.client, "127.0.0.2", self.key)
        recorded = (Path(self.tmp) / "known_hosts").read_text()
        self.assertIn(self.key.get_base64(), recorded)

    def test_user_key_and_port_come_from_the_environment(self):
        env = environ(
            self.tmp, STAGING_SSH_USER="deployer", STAGING_SSH_KEY="/k", STAGING_SSH_PORT="2222"
        )
        conn = connect.connection("127.0.0.2", env)
        self.assertEqual((conn.user, conn.port), ("deployer", 2222))
        self.assertEqual(conn.connect_kwargs["key_filename"], "/k")
        self.assertFalse(conn.connect_kwargs["look_for_keys"])

    def test_fab_reads_the_deploy_names_before_the_staging_ones(self):
        env = environ(
            self.tmp,
            DEPLOY_SSH_USER="deployer",
            DEPLOY_SSH_PORT="2200",
            STAGING_SSH_USER="stager",
            STAGING_SSH_PORT="2222",
            STAGING_SSH_KEY="/staging-key",
        )
        conn = connect.adopt(Connection("127.0.0.2"), env, names=connect.DEPLOY_NAMES)
        self.assertEqual((conn.user, conn.port), ("deployer", 2200))
        # Unset on the deploy side: the old name still applies.
        self.assertEqual(conn.connect_kwargs["key_filename"], "/staging-key")
        # The functional tests' connection reads only the staging names.
        conn = connect.connection("127.0.0.2", env)
        self.assertEqual((conn.user, conn.port), ("stager", 2222))

    def test_a_bad_deploy_port_is_named_in_the_sentence(self):
        env = environ(self.tmp, DEPLOY_SSH_PORT="ssh", STAGING_SSH_PORT="22")
        with self.assertRaisesRegex(connect.ConnectError, "^DEPLOY_SSH_PORT='ssh' is not a port"):
            connect.adopt(Connection("127.0.0.2"), env, names=connect.DEPLOY_NAMES)

    def test_user_in_the_host_string_wins(self):
        conn = connect.connection("alice@127.0.0.2", environ(self.tmp, STAGING_SSH_USER="bob"))
        self.assertEqual(conn.user, "alice")

    def test_the_local_user_named_in_the_host_string_wins_too(self):
        # fab -H root@db run by root, with DEPLOY_SSH_USER=deploy set for the app hosts.
        local = getpass.getuser()
        env = environ(self.tmp, DEPLOY_SSH_USER="deploy")
        conn = connect.connection(f"{local}@127.0.0.2", env)
        self.assertEqual(conn.user, local)
        # What fab's -H said decides, since Fabric forgets whether the string named a user.
        for argv, named in (
            (["fab", "-H", f"{local}@127.0.0.2", "task"], True),
            (["fab", f"--hosts=web1,{local}@127.0.0.2:22", "task"], True),
            (["fab", f"-H{local}@127.0.0.2", "task"], True),
            (["fab", "-H", "127.0.0.2", "task"], False),
            (["fab", "-H", f"{local}@127.0.0.3", "task"], False),
        ):
            with self.subTest(argv=argv):
                hosts = fabfile._hosts_argument(argv)
                self.assertEqual(connect.user_named_in(hosts, Connection("127.0.0.2")), named)
                conn = connect.adopt(Connection("127.0.0.2"), env, connect.DEPLOY_NAMES, named)
                self.assertEqual(conn.user, local if named else "deploy")

    def test_a_bad_port_is_refused_with_a_sentence(self):
        with self.assertRaisesRegex(connect.ConnectError, "is not a port number"):
            connect.connection("127.0.0.2", environ(self.tmp, STAGING_SSH_PORT="ssh"))


class SitePathsTest(unittest.TestCase):
    def test_paths_of_a_site(self):
        paths = SitePaths("superlists.example.com", "/home/deploy")
        root = "/home/deploy/sites/superlists.example.com"
        self.assertEqual(str(paths.root), root)
        self.assertEqual(str(paths.python), f"{root}/source/.venv/bin/python")
        self.assertEqual(str(paths.env), f"{root}/.env")
        self.assertEqual(str(paths.database), f"{root}/db.sqlite3")
        self.assertEqual(paths.service, "gunicorn-superlists_example_com")

    def test_manage_quotes_its_arguments_for_the_shell(self):
        command = SitePaths("s", "/home/d").manage("create_session", "edith o'neil@example.com")
        self.assertEqual(
            command,
            "cd /home/d/sites/s/source && /home/d/sites/s/source/.venv/bin/python manage.py "
            "create_session 'edith o'\"'\"'neil@example.com'",
        )
