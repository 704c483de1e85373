import threading

from django.db import connection
from django.test import TestCase

from functional_tests.ormguard import DirectQueryError, forbid_direct_queries, server_side
from lists.models import List


class DirectQueryGuardTest(TestCase):
    def test_a_query_from_test_code_fails_at_once_saying_what_to_use_instead(self):
        with forbid_direct_queries(), self.assertRaises(DirectQueryError) as failure:
            List.objects.count()
        self.assertIn("queried the database directly (SELECT COUNT(*)", str(failure.exception))
        self.assertIn("ask self.server", str(failure.exception))

    def test_the_server_objects_own_queries_are_allowed(self):
        with forbid_direct_queries(), server_side():
            self.assertEqual(List.objects.count(), 0)

    def test_the_live_servers_threads_are_not_stopped(self):
        counts = []

        def serve_a_request():
            counts.append(List.objects.count())
            connection.close()

        with forbid_direct_queries():
            thread = threading.Thread(target=serve_a_request)
            thread.start()
            thread.join()
        self.assertEqual(counts, [0])

    def test_the_guard_is_gone_after_the_test(self):
        with forbid_direct_queries():
            pass
        self.assertEqual(List.objects.count(), 0)
