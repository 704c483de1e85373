import json

from django.core.management.base import BaseCommand, CommandError

from superlists.preflight import format_report, run_checks


class Command(BaseCommand):
    help = "Check this server's settings, database, static files and gunicorn; name each problem."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="", help="the host name the browser uses")
        parser.add_argument(
            "--through",
            default="",
            help="nginx as http(s)://ADDRESS:PORT, to fetch one static file through it",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the report as JSON"
        )

    def handle(self, *args, host, through, as_json, **options):
        report = run_checks(host, through or None)
        if as_json:
            # Printed whatever it finds: the FT tools read the site's identity from it too.
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(format_report(report))
        if report["problems"]:
            raise CommandError(f"{len(report['problems'])} problem(s) found.")
