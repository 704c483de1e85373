import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from django.test import SimpleTestCase

from deploy_tools import serverlogs

APP = (
    "2026-12-03 17:56:44,123 ERROR django.request [req=6f1c2a9e0b3d4e5f ip=127.0.0.1 "
    "GET /lists/1/ user=anonymous] Internal Server Error: /lists/1/"
)
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/home/superlists/sites/staging/source/lists/views.py", line 20, in view_list',
    "django.db.utils.OperationalError: no such column: lists_item.done",
]
GUNICORN = "[2026-12-03 17:56:40 +0000] [4242] [INFO] Booting worker with pid: 4242"
GUNICORN_ACCESS = (
    ' - - [03/Dec/2026:17:56:44 +0000] "GET /lists/1/ HTTP/1.0" 500 1532 "-" "Mozilla"'
)
NGINX_ACCESS = (
    '127.0.0.1 - - [03/Dec/2026:18:56:45 +0100] "GET /static/css/base.css HTTP/1.1" 404 146 '
    '"http://127.0.0.2/" "Mozilla"'
)
NGINX_ERROR = (
    '2026/12/03 17:56:45 [error] 4321#4321: *7 open() "/home/superlists/sites/staging/static/'
    'css/base.css" failed (2: No such file or directory), client: 127.0.0.1, server: 127.0.0.2, '
    'request: "GET /static/css/base.css HTTP/1.1", host: "127.0.0.2"'
)


def at(second, microsecond=0):
    return datetime(2026, 12, 3, 17, 56, second, microsecond, tzinfo=UTC)


def output(*files):
    """read_command's output for (mode, name, lines) triples."""
    text = []
    for mode, name, lines in files:
        text += [f"==> superlists-log {mode} {name}", *lines, ""]
    return "\n".join(text)


class ParseStampTest(SimpleTestCase):
    def test_each_format_is_read_with_its_own_zone(self):
        cet = timezone(timedelta(hours=1))
        self.assertEqual(serverlogs.parse_stamp(APP), at(44, 123000))
        self.assertEqual(serverlogs.parse_stamp(GUNICORN), at(40))
        self.assertEqual(serverlogs.parse_stamp(GUNICORN_ACCESS), at(44))
        self.assertEqual(serverlogs.parse_stamp(NGINX_ACCESS), at(45))
        self.assertEqual(serverlogs.parse_stamp(NGINX_ERROR), at(45))
        # nginx writes its error log in the server's local time, without an offset.
        self.assertEqual(serverlogs.parse_stamp(NGINX_ERROR, cet), at(45) - timedelta(hours=1))

    def test_a_traceback_line_is_untimed(self):
        for line in TRACEBACK:
            self.assertIsNone(serverlogs.parse_stamp(line))

    def test_offset_zone_reads_date_output(self):
        self.assertEqual(serverlogs.offset_zone("+0530"), timezone(timedelta(hours=5, minutes=30)))
        self.assertEqual(serverlogs.offset_zone("-0100"), timezone(timedelta(hours=-1)))


class WindowTest(SimpleTestCase):
    def test_nginx_error_lines_inside_the_window_are_kept(self):
        found = serverlogs.window(
            output(("all", "nginx-error.log", ["2026/12/03 17:50:00 [warn] old", NGINX_ERROR])),
            since=at(44),
            local_tz=UTC,
        )
        self.assertEqual([r.text for r in found], [NGINX_ERROR])

    def test_a_traceback_stays_with_its_record_and_is_shown_once(self):
        found = serverlogs.window(
            output(
                ("new", "gunicorn.log", [GUNICORN, APP, *TRACEBACK]),
                ("new", "error.log", [APP, *TRACEBACK]),
                ("new", "nginx-error.log", [NGINX_ERROR]),
            ),
            since=at(44),
            local_tz=UTC,
        )
        shown = [line for record in found for line in record.shown()]
        self.assertEqual(shown.count(f"gunicorn.log: {TRACEBACK[-1]}"), 1)
        self.assertNotIn(f"error.log: {TRACEBACK[-1]}", shown)
        # In time order across files.
        self.assertEqual(
            [r.source for r in found], ["gunicorn.log", "gunicorn.log", "nginx-error.log"]
        )

    def test_new_text_is_kept_whole_even_from_the_same_second(self):
        # The previous test's lines from the same second are before the mark, so not read at
        # all; everything after the mark is this test's, whatever its stamp says.
        found = serverlogs.window(
            output(("new", "gunicorn.log", ["  a continuation at the top", APP])),
            since=at(59),
            local_tz=UTC,
        )
        self.assertEqual(len(found), 2)

    def test_a_rotated_file_is_cut_by_its_stamps_and_untimed_lines_at_its_top_dropped(self):
        found = serverlogs.window(
            output(("all", "gunicorn.log", ["  left over", GUNICORN, APP, *TRACEBACK])),
            since=at(44),
            local_tz=UTC,
        )
        self.assertEqual([r.lines[0] for r in found], [APP])

    def test_on_screen_a_traceback_is_cut_and_an_access_line_loses_referrer_and_agent(self):
        [record] = serverlogs.records("error.log", [APP, *TRACEBACK * 5])
        shown = record.shown(most=8)
        self.assertEqual(len(shown), 8)
        self.assertEqual(shown[2], "error.log:   … 9 more traceback lines …")
        self.assertEqual(shown[-1], f"error.log: {TRACEBACK[-1]}")
        [access] = serverlogs.records("nginx-access.log", [NGINX_ACCESS])
        self.assertEqual(
            access.shown(most=8),
            ['nginx-access.log: 127.0.0.1 - - [03/Dec/2026:18:56:45 +0100] '
             '"GET /static/css/base.css HTTP/1.1" 404 146'],
        )  # fmt: skip
        self.assertEqual(access.shown(), [f"nginx-access.log: {NGINX_ACCESS}"])

    def test_for_request_finds_a_requests_records_with_their_tracebacks(self):
        found = serverlogs.records("gunicorn.log", [GUNICORN, APP, *TRACEBACK])
        mine = serverlogs.for_request(found, "6f1c2a9e0b3d4e5f")
        self.assertEqual(mine[0].lines, [APP, *TRACEBACK])
        self.assertEqual(serverlogs.for_request(found, "0000000000000000"), [])

    def test_a_mark_is_read_from_what_the_mark_command_printed(self):
        mark = serverlogs.parse_mark("1532 gunicorn.log\n0 error.log\nstat: junk\n")
        self.assertEqual(mark, {"gunicorn.log": 1532, "error.log": 0})


class ShellCommandsTest(SimpleTestCase):
    """The remote commands run for real, in a local shell, on a real log folder."""

    def shell(self, command):
        return subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, check=True
        ).stdout

    def test_only_text_written_after_the_mark_is_read(self):
        folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder)
        (folder / "gunicorn.log").write_text(f"{APP} the previous test\n")
        (folder / "nginx-error.log").write_text("")
        mark = serverlogs.parse_mark(self.shell(serverlogs.mark_command(folder)))
        with open(folder / "gunicorn.log", "a") as log:
            log.write(f"{APP} this test\n" + "\n".join(TRACEBACK) + "\n")
        (folder / "nginx-error.log").write_text(NGINX_ERROR + "\n")
        (folder / "error.log").write_text(f"{APP} this test\n" + "\n".join(TRACEBACK) + "\n")
        found = serverlogs.window(self.shell(serverlogs.read_command(folder, mark)), at(0), UTC)
        shown = [line for record in found for line in record.shown()]
        # The shell lists error.log first; the same record in gunicorn.log is not shown again.
        traceback = [f"error.log: {line}" for line in TRACEBACK]
        expected = [f"error.log: {APP} this test", *traceback, f"nginx-error.log: {NGINX_ERROR}"]
        self.assertEqual(shown, expected)

    def test_a_log_rotated_since_the_mark_is_read_whole_and_kept_by_its_stamps(self):
        folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder)
        (folder / "gunicorn.log").write_text(f"{GUNICORN}\n{APP} before the rotation\n")
        mark = serverlogs.parse_mark(self.shell(serverlogs.mark_command(folder)))
        # Rotated: a new, shorter file holding a line from before the test and one from it.
        (folder / "gunicorn.log").write_text(f"{GUNICORN}\n{APP} this test\n")
        found = serverlogs.window(self.shell(serverlogs.read_command(folder, mark)), at(41), UTC)
        self.assertEqual([record.text for record in found], [f"{APP} this test"])

    def test_a_missing_log_folder_reads_as_nothing(self):
        command = serverlogs.read_command("/nonexistent/logs", {})
        self.assertEqual(serverlogs.window(self.shell(command), at(0), UTC), [])
        self.assertEqual(
            serverlogs.parse_mark(self.shell(serverlogs.mark_command("/nonexistent"))), {}
        )
