import unittest
from unittest import mock

from django.test import SimpleTestCase
from django.test.runner import DiscoverRunner, ParallelTestSuite

from superlists.test_runner import TestRunner


def suite_of_two_classes_sharing_a_hook(started):
    """Tests of two classes whose common base starts something slow (as FTs start browsers)."""

    class Base(unittest.TestCase):
        @staticmethod
        def prepare_ahead():
            started.append("browsers")

        def runTest(self):
            pass

    class One(Base):
        pass

    class Two(Base):
        pass

    class Plain(unittest.TestCase):
        def runTest(self):
            pass

    return unittest.TestSuite([One(), One(), Two(), Plain()])


class PrepareAheadTest(SimpleTestCase):
    def build(self, suite):
        # The seam: the suite Django's discovery would have built.
        with mock.patch.object(DiscoverRunner, "build_suite", return_value=suite):
            return TestRunner(verbosity=0).build_suite(["any"])

    def test_a_serial_run_starts_what_its_classes_need_once_before_any_test(self):
        started = []
        self.build(suite_of_two_classes_sharing_a_hook(started))
        self.assertEqual(started, ["browsers"])

    def test_a_parallel_run_leaves_it_to_each_worker(self):
        started = []
        tests = suite_of_two_classes_sharing_a_hook(started)
        self.build(ParallelTestSuite([tests], processes=2))
        self.assertEqual(started, [])
