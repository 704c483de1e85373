"""A test's own server log lines: read from where the test started, merged, each record once.

The site's log folder holds the app's lines (in gunicorn.log, and its errors again in
error.log), gunicorn's own and its access log, and nginx's access and error logs. Each has its
own timestamp format; a record is a stamped line and the untimed lines after it (a traceback).
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone

from deploy_tools import remote
from deploy_tools.log_tail import HEADER as _HEADER

_REFERRER_AND_AGENT = re.compile(r' "[^"]*" "[^"]*"$')


LOCAL = "the server's local time"


@dataclass(frozen=True)
class _Format:
    pattern: re.Pattern
    layout: str
    zone: object  # None when the stamp carries its offset


_FORMATS = (
    # app (Django logging's asctime): 2026-12-03 17:56:44,123 ERROR django.request [req=…
    # Django sets the process's TZ to settings.TIME_ZONE, which is UTC.
    _Format(re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) "), "%Y-%m-%d %H:%M:%S", UTC),
    # gunicorn's own log: [2026-12-03 17:56:44 +0000] [1234] [INFO] Booting worker with pid: 1234
    _Format(
        re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4})\] "),
        "%Y-%m-%d %H:%M:%S %z",
        None,
    ),
    # nginx's error log: 2026/12/03 17:56:44 [error] 4321#4321: *7 open() "…" failed
    _Format(re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \["), "%Y/%m/%d %H:%M:%S", LOCAL),
    # nginx's and gunicorn's access logs: 127.0.0.1 - - [03/Dec/2026:17:56:44 +0000] "GET / …
    _Format(
        re.compile(r"^\S* \S+ \S+ \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "),
        "%d/%b/%Y:%H:%M:%S %z",
        None,
    ),
)


def parse_stamp(line, local_tz=UTC):
    """The moment a log line was written, or None for an untimed line (say, a traceback's)."""
    for fmt in _FORMATS:
        if match := fmt.pattern.match(line):
            stamp = datetime.strptime(match[1], fmt.layout)
            if fmt.zone is not None:
                stamp = stamp.replace(tzinfo=local_tz if fmt.zone is LOCAL else fmt.zone)
            if fmt.pattern.groups > 1:
                stamp = stamp.replace(microsecond=int(match[2]) * 1000)
            return stamp
    return None


@dataclass
class Record:
    """One log entry: its file, when it was written, and its lines (a traceback included)."""

    source: str
    stamp: datetime | None
    lines: list = field(default_factory=list)
    host: str = ""  # which app host's file, when a site runs on several

    @property
    def text(self):
        return "\n".join(self.lines)

    def shown(self, most=None):
        """Its lines, each after its file's name; with `most` (on screen), cut to the point."""
        lines = self.lines
        if most and len(lines) > most:
            cut = len(lines) - most + 1
            lines = [*lines[:2], f"  … {cut} more traceback lines …", *lines[-(most - 3) :]]
        if most and self.source.endswith("access.log"):
            # The referrer and the browser's user agent fill two screen lines and say nothing.
            lines = [_REFERRER_AND_AGENT.sub("", line) for line in lines]
        where = f"{self.host} {self.source}" if self.host else self.source
        return [f"{where}: {line}" for line in lines]


def records(source, lines, since=None, local_tz=UTC):
    """The records in one file's lines; with `since`, only those written from then on."""
    found = []
    for line in lines:
        stamp = parse_stamp(line, local_tz)
        if stamp is not None or not found:
            found.append(Record(source, stamp))
        found[-1].lines.append(line)
    if since is None:
        return found
    # Whole seconds in some formats: keep the second the window started in.
    floor = since.replace(microsecond=0)
    return [record for record in found if record.stamp is not None and record.stamp >= floor]


def merge(per_file):
    """Records from several files in time order, a record repeated in another file shown once."""
    # The app's errors go to error.log and, through gunicorn's captured stderr, to gunicorn.log:
    # the same traceback twice would push the cause off the screen.
    seen, merged = set(), []
    for record in (record for found in per_file for record in found):
        if record.text not in seen:
            seen.add(record.text)
            merged.append(record)
    earliest = datetime.min.replace(tzinfo=UTC)
    # Stable: untimed records (new text at the top of a file) keep their place before the rest.
    merged.sort(key=lambda record: record.stamp or earliest)
    return merged


def for_request(found, request_id):
    """The records (tracebacks included) logged while serving the request with request_id."""
    return [record for record in found if f"req={request_id} " in record.lines[0]]


def mark_command(folder):
    """A shell command printing the size of each log file in folder, as `SIZE NAME` lines."""
    return remote.script("log_tail.py", "mark", folder)


def parse_mark(output):
    """{file name: size} from mark_command's output."""
    sizes = {}
    for line in output.splitlines():
        size, _, name = line.partition(" ")
        if size.isdigit() and name:
            sizes[name] = int(size)
    return sizes


def read_command(folder, mark):
    """A shell command printing each log file's text written since `mark` (all of a new one)."""
    return remote.script("log_tail.py", "read", folder, *(f"{n}={s}" for n, s in mark.items()))


def window(output, since, local_tz):
    """The merged records in read_command's output: new text whole, other text by its stamps."""
    per_file, mode, source, lines = [], None, None, []

    def flush():
        if source is not None:
            per_file.append(records(source, lines, None if mode == "new" else since, local_tz))

    for line in output.splitlines():
        if line.startswith(_HEADER):
            flush()
            mode, _, source = line[len(_HEADER) :].partition(" ")
            lines = []
        elif line:
            lines.append(line)
    flush()
    return merge(per_file)


def local_window(entries):
    """Records from the local live server's already-windowed entries (a traceback in one)."""
    return merge([records("app", [line for entry in entries for line in entry.splitlines()])])


def since_utc(timestamp):
    """A time.time() value as an aware datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


def offset_zone(raw):
    """The timezone of `date +%z` output such as +0100."""
    sign = -1 if raw.startswith("-") else 1
    return timezone(sign * (datetime.strptime(raw[1:5], "%H%M") - datetime(1900, 1, 1)))
