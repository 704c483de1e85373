"""The test runner (settings.TEST_RUNNER): the settings only a test run needs, applied to it."""

import logging.config
import shutil
import tempfile
from copy import deepcopy
from pathlib import Path

from django.conf import settings
from django.test import modify_settings, override_settings
from django.test.runner import DiscoverRunner, ParallelTestSuite
from django.test.utils import iter_test_cases


def test_logging(logging_config, log_dir):
    """The site's logging, with errors filed under log_dir and a console kept quiet."""
    config = deepcopy(logging_config)
    config["handlers"]["errors"]["filename"] = str(Path(log_dir) / "error.log")
    # Tests provoke errors on purpose ("kaboom", DisallowedHost): the console stays readable.
    config["handlers"]["console"]["level"] = "CRITICAL"
    return config


class TestRunner(DiscoverRunner):
    """Django's runner, with the test-only settings switched on around the run."""

    def setup_test_environment(self, **kwargs):
        super().setup_test_environment(**kwargs)
        # The errors tests provoke go to a folder of this run's own, never to the developer's
        # logs/error.log.
        self.log_dir = Path(tempfile.mkdtemp(prefix="superlists-test-logs-"))
        self.test_settings = [
            override_settings(
                LOG_DIR=self.log_dir,
                LOGGING=test_logging(settings.LOGGING, self.log_dir),
                PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            ),
            # The FT-only management commands (create_session, reset_staging), to test them.
            modify_settings(INSTALLED_APPS={"append": "functional_tests"}),
        ]
        for change in self.test_settings:
            change.enable()
        # Django configures logging once, at setup: the new LOGGING applies from here on.
        logging.config.dictConfig(settings.LOGGING)

    def build_suite(self, *args, **kwargs):
        suite = super().build_suite(*args, **kwargs)
        if not isinstance(suite, ParallelTestSuite):
            # What a test class needs that is slow to start (the FTs' browsers) starts now, in
            # the background, while the databases are made and the unit tests run. (In a
            # --parallel run each worker starts its own.)
            hooks = {getattr(test, "prepare_ahead", None) for test in iter_test_cases(suite)}
            for prepare in hooks - {None}:
                prepare()
        return suite

    def teardown_test_environment(self, **kwargs):
        for change in reversed(self.test_settings):
            change.disable()
        logging.config.dictConfig(settings.LOGGING)
        shutil.rmtree(self.log_dir, ignore_errors=True)
        super().teardown_test_environment(**kwargs)
