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


def _problem(sentence, fallback):
    """Raise the sentence, or note it and go on with fallback while settings are read."""
    if _problems is None:
        raise ImproperlyConfigured(f"{sentence} Set it {WHERE_TO_SET}.")
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
        raise ImproperlyConfigured(f"{' '.join(problems)} Set {them} {WHERE_TO_SET}.")


def is_yes(raw):
    """Whether a yes/no word says yes; junk is no (env_bool is where junk is refused)."""
    return (raw or "").strip().lower() in TRUE_WORDS


def env_bool(name, default=False):
    """Read a yes/no variable; anything that is not clearly one of them is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return _problem(
        f"{name}={raw!r} is not a yes/no value: use one of 1, yes, true or 0, no, false.",
        default,
    )


def env_int(name, default, minimum=0):
    """Read a whole number, with a sentence instead of a ValueError when it is not one."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        return _problem(f"{name}={raw!r} is not a whole number.", default)
    if value < minimum:
        return _problem(f"{name}={raw!r} must be at least {minimum}.", default)
    return value


def env_required(name, why):
    """Read a variable that must be set, naming it and how to set it when it is not."""
    value = os.environ.get(name, "").strip()
    if not value:
        return _problem(f"{name} is not set, and {why}.", "")
    return value


def env_str(name, default=""):
    """Read a plain string variable, treating blank as unset."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_list(name, default=()):
    """Read a comma-separated list, dropping blanks."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


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
