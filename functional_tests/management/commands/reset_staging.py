from django.core.management import call_command
from django.core.management.base import BaseCommand

from functional_tests.management.staging_only import add_site_id_argument, require_staging


class Command(BaseCommand):
    help = "Empty the database before a functional test (staging servers only)."

    def add_arguments(self, parser):
        add_site_id_argument(parser)

    def handle(self, *args, site_id, **options):
        require_staging("reset_staging", site_id)
        call_command("flush", interactive=False, verbosity=0)
