"""The rigs' helpers for ports, polling and live processes, against real processes."""

import os
import socket
import subprocess
import sys
import unittest

from rigs.processes import alive, children_of, descendants, free_port, owned_by, wait_until


class FreePortTest(unittest.TestCase):
    def test_nothing_listens_on_a_free_port(self):
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", free_port()), timeout=1)


class WaitUntilTest(unittest.TestCase):
    def test_returns_the_first_truthy_answer_past_errors(self):
        answers = iter([OSError("not yet"), 0, "ready"])

        def check():
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return answer

        self.assertEqual(wait_until(check, "the answer", timeout=5, interval=0), "ready")

    def test_gives_up_naming_what_and_the_last_error(self):
        def refused():
            raise ConnectionRefusedError("refused")

        with self.assertRaisesRegex(TimeoutError, r"waiting for the port \(last error: refused"):
            wait_until(refused, "the port", timeout=0.05)

    def test_gives_up_with_the_rigs_own_exception(self):
        with self.assertRaisesRegex(ValueError, "its own sentence"):
            wait_until(bool, "x", timeout=0.05, failure=lambda: ValueError("its own sentence"))


class ProcessesTest(unittest.TestCase):
    def test_children_and_grandchildren_are_found_while_alive(self):
        script = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'input()'])"
        child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)
        try:
            grandchild = wait_until(lambda: descendants(child.pid), "the grandchild")[0]
            self.assertIn(child.pid, children_of(os.getpid()))
            self.assertNotIn(grandchild, children_of(os.getpid()))
            self.assertTrue(alive(grandchild))
            self.assertIn(grandchild, owned_by(os.getuid()))
        finally:
            child.communicate(b"\n")
        self.assertFalse(alive(child.pid))
        self.assertEqual(descendants(child.pid), [])
