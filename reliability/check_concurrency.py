"""Several clients writing at once through several gunicorn workers lose nothing and see no 5xx."""

import html
import os
import signal
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from rigs.form_client import ROW, FormClient
from rigs.gunicorn import Gunicorn
from rigs.postgres import Postgres

CLIENTS = 8
ITEMS_EACH = 50


def new_list(server):
    status, headers, _ = FormClient(server.url).post("/lists/new", {"text": "first item"})
    assert status == 302, f"creating a list answered {status}"
    return headers["Location"]


def items_on(server, list_path):
    status, _, body = FormClient(server.url).get(list_path)
    assert status == 200, f"{list_path} answered {status}"
    return ROW.findall(body)


DUPLICATE_ERROR = "You've already got this in your list"


def post_items(server, list_path, texts):
    """One client posting its texts in turn; each POST's status, "400 dup" for the duplicate."""
    client = FormClient(server.url)
    client.get(list_path)
    statuses = []
    for text in texts:
        status, _, body = client.post(list_path, {"text": text})
        statuses.append(
            "400 dup" if status == 400 and DUPLICATE_ERROR in html.unescape(body) else status
        )
    return statuses


def run_clients(server, list_path, batches):
    """Every batch posted by its own client, all at once; the statuses of every POST."""
    with ThreadPoolExecutor(len(batches)) as pool:
        results = pool.map(lambda texts: post_items(server, list_path, texts), batches)
        return [status for statuses in results for status in statuses]


class ConcurrentWritersMixin:
    """The same two stories, run on each database."""

    def start_server(self):
        raise NotImplementedError

    def test_distinct_items_from_many_clients_are_all_saved(self):
        with self.start_server() as server:
            list_path = new_list(server)
            batches = [[f"client {c} item {n}" for n in range(ITEMS_EACH)] for c in range(CLIENTS)]
            statuses = run_clients(server, list_path, batches)
            saved = items_on(server, list_path)
        print(f"\n  {self.name}: {len(statuses)} POSTs, statuses {sorted(set(statuses))}, "
              f"{len(saved) - 1} items saved")  # fmt: skip
        self.assertEqual([s for s in statuses if s >= 500], [])
        self.assertEqual(statuses.count(302), CLIENTS * ITEMS_EACH)
        self.assertEqual(len(saved), CLIENTS * ITEMS_EACH + 1)

    def test_the_same_items_from_many_clients_are_saved_once(self):
        with self.start_server() as server:
            list_path = new_list(server)
            texts = [f"shared item {n}" for n in range(ITEMS_EACH)]
            statuses = run_clients(server, list_path, [texts] * CLIENTS)
            saved = items_on(server, list_path)
        print(f"\n  {self.name}: {len(statuses)} POSTs, {statuses.count(302)} saved, "
              f"{statuses.count('400 dup')} friendly duplicate errors")  # fmt: skip
        # Every answer is either "saved" or the friendly duplicate error: no 5xx, nothing else.
        self.assertEqual([s for s in statuses if s not in (302, "400 dup")], [])
        self.assertEqual(statuses.count(302), ITEMS_EACH)
        self.assertEqual(statuses.count("400 dup"), (CLIENTS - 1) * ITEMS_EACH)
        self.assertEqual(sorted(saved[1:]), sorted(texts))


class SqliteConcurrencyTest(ConcurrentWritersMixin, unittest.TestCase):
    name = "SQLite, 4 workers"

    def start_server(self):
        return Gunicorn(workers=4)


class PostgresConcurrencyTest(ConcurrentWritersMixin, unittest.TestCase):
    name = "PostgreSQL, 4 workers"

    @classmethod
    def setUpClass(cls):
        cls.postgres = Postgres().start()
        cls.addClassCleanup(cls.postgres.stop)

    def start_server(self):
        # Each test gets a fresh schema: drop what the previous one made.
        return Gunicorn(workers=4, database_url=self.postgres.fresh_database())


class KilledWorkerTest(unittest.TestCase):
    def test_items_acknowledged_before_a_worker_is_killed_are_kept(self):
        with Gunicorn(workers=3) as server:
            list_path = new_list(server)
            acknowledged, lock = [], threading.Lock()
            statuses = []

            def writer(client):
                form = FormClient(server.url)
                form.get(list_path)
                for n in range(ITEMS_EACH):
                    text = f"client {client} item {n}"
                    try:
                        status = form.post(list_path, {"text": text})[0]
                    except OSError:
                        status = "connection dropped"
                    with lock:
                        statuses.append(status)
                        if status == 302:
                            acknowledged.append(text)

            threads = [threading.Thread(target=writer, args=(c,)) for c in range(CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(0.3)  # let the load build up before the fault
            victim = server.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            for thread in threads:
                thread.join(timeout=120)
            saved = set(items_on(server, list_path))
            workers_after = server.worker_pids()
        lost = [text for text in acknowledged if text not in saved]
        print(f"\n  killed worker {victim}: {len(acknowledged)} acknowledged, {len(saved) - 1} "
              f"saved, {len(lost)} lost, other outcomes "
              f"{sorted({str(s) for s in statuses if s != 302})}")  # fmt: skip
        self.assertEqual(lost, [])
        self.assertNotIn(victim, workers_after)
        self.assertEqual(len(workers_after), 3, "gunicorn should replace the killed worker")
        self.assertEqual([s for s in statuses if isinstance(s, int) and s >= 500 and s != 502], [])


if __name__ == "__main__":
    unittest.main()
