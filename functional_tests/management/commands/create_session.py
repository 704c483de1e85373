from django.core.management.base import BaseCommand

from functional_tests.management.staging_only import add_site_id_argument, require_staging


class Command(BaseCommand):
    help = "Print only the key of a new logged-in session for EMAIL (staging servers only)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        add_site_id_argument(parser)

    def handle(self, *args, email, site_id, **options):
        require_staging("create_session", site_id)
        from accounts.sessions import create_pre_authenticated_session

        # Only the key on stdout: the functional tests read it back over SSH as a cookie value.
        self.stdout.write(create_pre_authenticated_session(email))
