import socket
import tempfile
from pathlib import Path

from django.test import SimpleTestCase

from deploy_tools.connect import ConnectError
from functional_tests.server import StagingError, StagingServer


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UnreachableStagingServerTest(SimpleTestCase):
    def test_a_dead_host_is_tried_once_and_then_refused_with_the_same_sentence(self):
        known_hosts = Path(tempfile.mkdtemp()) / "known_hosts"
        known_hosts.write_text("")
        environ = {
            "STAGING_SSH_HOST": f"deploy@127.0.0.1:{closed_port()}",
            "SUPERLISTS_KNOWN_HOSTS": str(known_hosts),
        }
        server = StagingServer("127.0.0.1:8999", environ)
        with self.assertRaisesMessage(ConnectError, "Could not connect to deploy@127.0.0.1"):
            server.reset()
        with self.assertRaisesMessage(StagingError, "not tried again this run"):
            server.create_session("edith@example.com")
