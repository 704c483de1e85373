from django.core.management import call_command
from django.core.management.base import BaseCommand

from functional_tests.management.staging_only import require_staging


class Command(BaseCommand):
    help = "Empty the database before a functional test (staging servers only)."

    def handle(self, *args, **options):
        require_staging("reset_staging")
        call_command("flush", interactive=False, verbosity=0)
