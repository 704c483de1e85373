"""migration_check.py's judgement of which migrations break the release still running."""

import unittest

from django.apps import apps
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from deploy_tools.migration_check import breaking_reasons


def reasons(operation, new_models=()):
    return breaking_reasons(operation, "lists", ProjectState.from_apps(apps), set(new_models))


class BreakingReasonsTest(unittest.TestCase):
    def test_removing_or_renaming_columns_and_tables_breaks_the_running_release(self):
        for operation, said in (
            (migrations.RemoveField("item", "text"), "removes the column lists.item.text"),
            (migrations.RenameField("item", "text", "body"), "renames the column lists.item.text"),
            (migrations.DeleteModel("item"), "drops the table of lists.item"),
            (migrations.RenameModel("item", "entry"), "renames the table of lists.item"),
        ):
            with self.subTest(said=said):
                self.assertEqual(len(reasons(operation)), 1)
                self.assertIn(said, reasons(operation)[0])

    def test_a_not_null_column_without_a_database_default_breaks_inserts(self):
        required = models.TextField(default="")
        self.assertIn("NOT NULL", reasons(migrations.AddField("item", "note", required))[0])
        owner = models.ForeignKey("accounts.User", on_delete=models.CASCADE)
        self.assertIn("NOT NULL", reasons(migrations.AlterField("list", "owner", owner))[0])

    def test_adding_what_the_running_release_can_ignore_is_fine(self):
        for operation in (
            migrations.AddField("item", "note", models.TextField(null=True)),
            migrations.AddField("item", "note", models.TextField(db_default="")),
            migrations.AlterField("item", "text", models.TextField(default="")),
            migrations.CreateModel("tag", [("id", models.AutoField(primary_key=True))]),
        ):
            with self.subTest(operation=operation.describe()):
                self.assertEqual(reasons(operation), [])

    def test_anything_on_a_table_this_deploy_creates_is_fine(self):
        operation = migrations.RemoveField("tag", "name")
        self.assertEqual(reasons(operation, new_models={("lists", "tag")}), [])


class CommittedMigrationsTest(unittest.TestCase):
    def test_no_committed_migration_breaks_the_release_before_it(self):
        # Each one is what some server applies while the previous release still serves.
        loader = MigrationLoader(None, ignore_no_migrations=True)
        for key in sorted(loader.disk_migrations):
            app_label, name = key
            if app_label not in ("accounts", "lists"):
                continue
            migration = loader.get_migration(*key)
            state = loader.project_state(key, at_end=False)
            created = set()
            for operation in migration.operations:
                with self.subTest(migration=f"{app_label}.{name}", operation=operation.describe()):
                    self.assertEqual(breaking_reasons(operation, app_label, state, created), [])
                if isinstance(operation, migrations.CreateModel):
                    created.add((app_label, operation.name.lower()))
                operation.state_forwards(app_label, state)
