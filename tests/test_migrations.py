"""Migrations run against the models of their time: their code imports nothing of ours.

Django writes references to a field's validators and defaults (``partnerships.models.
validate_time_zone``) at the top of a migration, and needs them to rebuild that field's state;
those stay. Code that migrations *run* (``RunPython``) must inline what it needs: the
application's code changes after the migration is written, the migration must not."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("partnerships", "triggers", "campaigns", "rewards", "config")
MIGRATIONS = sorted(path for app in APPS for path in (ROOT / app / "migrations").glob("0*.py"))


def _ours(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in APPS


@pytest.mark.parametrize(
    "path", MIGRATIONS, ids=lambda path: f"{path.parent.parent.name}/{path.name}"
)
def test_migration_code_imports_nothing_of_ours(path):
    tree = ast.parse(path.read_text())
    ours_at_top = {
        (alias.asname or alias.name).split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import)
        for alias in node.names
        if _ours(alias.name)
    }
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom):
                assert not _ours(node.module), f"{function.name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(_ours(alias.name) for alias in node.names), function.name
            if isinstance(node, ast.Name):
                assert node.id not in ours_at_top, f"{function.name} uses {node.id}"
    assert not any(isinstance(node, ast.ImportFrom) and _ours(node.module) for node in tree.body), (
        "from-imports of our code at the top of a migration"
    )


def test_there_are_migrations_to_check():
    assert len(MIGRATIONS) >= 10
