"""Small readers for settings that come from the environment, and the .env file format."""

import io
import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import dotenv_values

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TRUE_WORDS = {"1", "y", "yes", "true", "on"}
FALSE_WORDS = {"", "0", "n", "no", "false", "off"}

# While settings are read, problems are collected here and reported together at the end,
# rather than one per run (see collect_problems).
_problems = None


WHERE_TO_SET = "in the environment or in the site's .env file (see .env.example)"


class BadVariable(ImproperlyConfigured, ValueError):
    """An environment variable is unset or holds junk; the message names it and says how."""


def _problem(sentence, fallback, where=WHERE_TO_SET):
    """Raise the sentence, or note it and go on with fallback while settings are read."""
    if _problems is None:
        raise BadVariable(f"{sentence} Set it {where}.")
    _problems.append(sentence)
    return fallback


def collect_problems():
    """From now on, note configuration problems instead of raising the first one."""
    global _problems
    _problems = []


def raise_collected_problems():
    """Raise every problem noted since collect_problems, in one ImproperlyConfigured."""
    global _problems
    problems, _problems = _problems or [], None
    if problems:
        them = "it" if len(problems) == 1 else "them"
        raise BadVariable(f"{' '.join(problems)} Set {them} {WHERE_TO_SET}.")


def is_yes(raw):
    """Whether a yes/no word says yes; junk is no (Variables.bool is where junk is refused)."""
    return (raw or "").strip().lower() in TRUE_WORDS


class Variables:
    """Typed reads of environment variables: the site's settings, the FT tools and fab's."""

    # One reader, so that `off` is false and `POP3_PORT=abc` a sentence everywhere.

    def __init__(self, environ=None, where=WHERE_TO_SET):
        self._environ = environ
        self.where = where  # how the person running this sets a variable, for the sentences

    @property
    def environ(self):
        return os.environ if self._environ is None else self._environ

    def _problem(self, sentence, fallback):
        return _problem(sentence, fallback, self.where)

    def bool(self, name, default=False):
        """A yes/no variable; anything that is not clearly one of them is an error."""
        raw = self.environ.get(name)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        return self._problem(
            f"{name}={raw!r} is not a yes/no value: use one of 1, yes, true or 0, no, false.",
            default,
        )

    def int(self, name, default, minimum=0, what="a whole number"):
        """A whole number, with a sentence instead of a ValueError when it is not one."""
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            return self._problem(f"{name}={raw!r} is not {what}.", default)
        if value < minimum:
            return self._problem(f"{name}={raw!r} must be at least {minimum}.", default)
        return value

    def required(self, name, why):
        """A variable that must be set, naming it and how to set it when it is not."""
        value = self.environ.get(name, "").strip()
        if not value:
            return self._problem(f"{name} is not set, and {why}.", "")
        return value

    def str(self, name, default=""):
        """A plain string variable, blank meaning unset."""
        return self.environ.get(name, "").strip() or default

    def list(self, name, default=()):
        """A comma-separated list, dropping blanks."""
        raw = self.environ.get(name)
        if raw is None:
            return list(default)
        return [part.strip() for part in raw.split(",") if part.strip()]


# The settings' readers: this process's environment, problems collected while settings load.
_process = Variables()
env_bool = _process.bool
env_int = _process.int
env_required = _process.required
env_str = _process.str
env_list = _process.list


def parse_dotenv(text):
    """Parse .env text into a dict of strings, exactly as written (no `${NAME}` expansion)."""
    parsed = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {key: value or "" for key, value in parsed.items()}


def read_dotenv(path):
    """Parse a .env file into a dict; a missing file is empty."""
    path = Path(path)
    return parse_dotenv(path.read_text()) if path.is_file() else {}


def load_dotenv(path):
    """Put a .env file's variables into os.environ, never overriding ones already set."""
    for key, value in read_dotenv(path).items():
        os.environ.setdefault(key, value)


def format_dotenv(values, header=""):
    """Render a dict as .env text that parse_dotenv reads back unchanged."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in values.items():
        if not VARIABLE_NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not a valid environment variable name.")
        # Single quotes keep everything literal; python-dotenv unescapes \\ and \' in them.
        escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
        lines.append(f"{key}='{escaped}'")
    return "\n".join(lines) + "\n"
