"""A connection whose commands run for real on this machine, so the fabfile's steps can be tested
by what they leave in a temporary home rather than by the shell they generate."""

import re
import subprocess

from invoke import Context, Result
from invoke.exceptions import UnexpectedExit


class LocalHost(Context):
    """Runs each command in a local bash, as Fabric would on the server, and records it.

    `answers` maps a regex to (stdout, exit status) for the few commands that would reach
    beyond the temporary home (the host's nginx or supervisord, sudo, a release's venv):
    those are answered, not run.
    """

    host = "localhost"
    user = "superlists"
    ran = None
    answers = None

    def __init__(self, **answers):
        super().__init__()
        self.ran = []
        self.answers = {re.compile(pattern): answer for pattern, answer in answers.items()}

    def run(self, command, **options):
        self.ran.append(command)
        for pattern, (stdout, exited) in self.answers.items():
            if pattern.search(command):
                result = Result(stdout=stdout, exited=exited, command=command)
                if exited and not options.get("warn"):
                    raise UnexpectedExit(result)
                return result
        return super().run(command, **options)

    def create_session(self):
        return _Channel()


class _Channel:
    """The part of paramiko's Channel that deploy_tools.remote.pipe uses, over a local bash."""

    def exec_command(self, command):
        self.process = subprocess.Popen(
            ["bash", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def sendall(self, data):
        self.process.stdin.write(data)

    def shutdown_write(self):
        self.process.stdin.close()

    def makefile_stderr(self, mode):
        return self.process.stderr

    def recv_exit_status(self):
        return self.process.wait()

    def close(self):
        self.process.stderr.close()
