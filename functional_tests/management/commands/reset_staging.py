import json

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from functional_tests.management.staging_only import add_site_id_argument, require_staging
from superlists.preflight import run_checks


class Command(BaseCommand):
    help = "Empty the database before a functional test (staging servers only)."

    def add_arguments(self, parser):
        add_site_id_argument(parser)
        parser.add_argument(
            "--preflight",
            metavar="HOST",
            default="",
            help="first run the preflight for the host the browser uses and print it as JSON; "
            "empty the database only if it found nothing",
        )

    def handle(self, *args, site_id, preflight, **options):
        require_staging("reset_staging", site_id)
        if preflight:
            # In the same process as the first reset: the FT run pays no extra SSH round trip
            # or Django start-up for its preflight.
            report = run_checks(preflight)
            self.stdout.write(json.dumps(report))
            if report["problems"]:
                raise CommandError("The preflight found problems; nothing was changed.")
        call_command("flush", interactive=False, verbosity=0)
