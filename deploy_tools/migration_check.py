"""migration_check: run on the server by fab, in a release's folder with its venv's Python.

Usage: python migration_check.py plan|unknown

plan     prints, as JSON, the migrations this release would apply to the site's database, each
         with the reasons it would break the release that is still running (empty if none).
unknown  prints, as JSON, the migrations applied to the database that this release's code
         does not have (what a rollback to it leaves behind).
"""

import json
import os
import sys


def setup_django():
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "superlists.settings")
    import django

    django.setup()


def _needs_a_value(field):
    """A NOT NULL column the database itself cannot fill in for an older release's INSERT."""
    from django.db.models import NOT_PROVIDED

    return not field.many_to_many and not field.null and field.db_default is NOT_PROVIDED


def breaking_reasons(operation, app_label, state, new_models):
    """Why one operation would break the release still running against the database."""
    from django.db import migrations

    model = getattr(operation, "model_name", None) or getattr(operation, "name", "")
    table = f"{app_label}.{model}".lower()
    if (app_label, model.lower()) in new_models:
        return []  # a table this deploy creates: the running release never uses it
    if isinstance(operation, migrations.RemoveField):
        return [f"removes the column {table}.{operation.name}"]
    if isinstance(operation, migrations.RenameField):
        return [f"renames the column {table}.{operation.old_name} to {operation.new_name}"]
    if isinstance(operation, migrations.DeleteModel):
        return [f"drops the table of {table}"]
    if isinstance(operation, migrations.RenameModel):
        return [f"renames the table of {app_label}.{operation.old_name} to {operation.new_name}"]
    if isinstance(operation, migrations.AlterModelTable):
        return [f"renames the table of {table}"]
    if isinstance(operation, migrations.AddField) and _needs_a_value(operation.field):
        return [
            f"adds the NOT NULL column {table}.{operation.name} without a database default "
            f"(db_default), so the running release's inserts would fail"
        ]
    if isinstance(operation, migrations.AlterField):
        old = state.models[app_label, model.lower()].fields.get(operation.name)
        new = operation.field
        if old is not None and old.null and _needs_a_value(new):
            return [f"makes {table}.{operation.name} NOT NULL without a database default"]
        if old is not None and old.db_column != new.db_column:
            return [f"renames the column of {table}.{operation.name}"]
    return []


def plan():
    from django.db import connection, migrations
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    loader = executor.loader
    steps = executor.migration_plan(loader.graph.leaf_nodes())
    new_models, found = set(), []
    for migration, backwards in steps:
        if backwards:
            continue
        app_label = migration.app_label
        state = loader.project_state((app_label, migration.name), at_end=False)
        reasons = []
        for operation in migration.operations:
            reasons += breaking_reasons(operation, app_label, state, new_models)
            if isinstance(operation, migrations.CreateModel):
                new_models.add((app_label, operation.name.lower()))
            operation.state_forwards(app_label, state)
        found.append({"migration": f"{app_label}.{migration.name}", "breaks": reasons})
    return found


def unknown():
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    extra = set(loader.applied_migrations) - set(loader.disk_migrations)
    return sorted(f"{app}.{name}" for app, name in extra)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("plan", "unknown"):
        sys.exit(__doc__)
    setup_django()
    print(json.dumps(plan() if mode == "plan" else unknown()))


if __name__ == "__main__":
    main()
