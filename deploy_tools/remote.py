"""Running commands on the server: one `run` with the usual flags, files on stdin, pipes."""

import shlex
from pathlib import Path

from deploy_tools.errors import DeployError

SCRIPTS = Path(__file__).resolve().parent


def q(path):
    """A path or word quoted for the remote shell."""
    return shlex.quote(str(path))


def script(name, *args, python="/usr/bin/python3"):
    """The command that runs one of deploy_tools' scripts on the server with python."""
    # Sent along rather than run from a release, which may be an older commit without it.
    code = (SCRIPTS / name).read_text()
    return " ".join([python, "-c", shlex.quote(code), *(q(arg) for arg in args)])


def shown(command):
    """A command as a person reads it: each script sent along replaced by its file name."""
    for path in SCRIPTS.glob("*.py"):
        command = command.replace(shlex.quote(path.read_text()), f"<{path.name}>")
    return command


def run(conn, command, **options):
    """Run command on the server quietly, with nothing of ours on its stdin."""
    return conn.run(command, hide=True, in_stream=False, **options)


def ok(conn, command):
    """Whether command succeeds on the server."""
    return run(conn, command, warn=True).ok


def read_command(conn, command):
    """What command prints on the server, even if it fails."""
    return run(conn, command, warn=True).stdout


def read_remote(conn, path):
    """A remote file's text, or "" if it does not exist."""
    return run(conn, f"cat {q(path)} 2>/dev/null || true").stdout


def write_file(conn, path, text, mode="644"):
    """Replace a remote file atomically with text, sent on stdin."""
    # Never on the command line: every local user sees it in `ps`, and a failed command is
    # printed whole. The .env holds the secret key and the mail password.
    pipe(
        conn,
        f"umask 077 && cat > {q(path)}.new && chmod {mode} {q(path)}.new && "
        f"mv {q(path)}.new {q(path)}",
        text.encode(),
        what=f"Writing {path}",
    )


def write_if_changed(conn, path, text, mode="644", current=None):
    """Write the file only if its text differs; say whether it did."""
    if current is None:
        current = read_remote(conn, path)
    if current == text:
        return False
    write_file(conn, path, text, mode)
    return True


def pipe(conn, command, data, what="Unpacking the source"):
    """Run command on the server with data on its stdin (invoke's stdin pump is bytewise)."""
    channel = conn.create_session()
    try:
        channel.exec_command(command)
        channel.sendall(data)
        channel.shutdown_write()
        errors = channel.makefile_stderr("rb").read().decode(errors="replace")
        status = channel.recv_exit_status()
    finally:
        channel.close()
    if status:
        raise DeployError(f"{what} on the server failed ({status}): {errors.strip()}")
