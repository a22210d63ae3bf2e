import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from campaigns.models import Campaign
from tests.factories import PartnershipFactory

from .support import campaign, exported, text_of


def _run(*args, stdin: str | None = None) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _write(tmp_path, document: dict, name: str = "config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_export_plan_apply_through_the_commands(configured, operator, tmp_path):
    path = tmp_path / "config.yaml"
    _run("config_export", str(configured.pk), "--output", str(path))
    assert path.read_text() == text_of(configured)
    empty = PartnershipFactory()

    shown = _run("config_plan", str(empty.pk), str(path))
    planned = json.loads(_run("config_plan", str(empty.pk), str(path), "--json"))
    applied = _run(
        "config_apply",
        str(empty.pk),
        str(path),
        "--actor",
        "ops",
        "--expect",
        planned["fingerprint"],
    )

    assert "+ campaign cashback: create -> draft" in shown
    assert f"--expect {planned['fingerprint']}" in shown
    assert planned["summary"] == {"create": 6, "change": 0, "delete": 0}
    assert "Applied. Fingerprint now:" in applied
    assert text_of(empty) == text_of(configured)


def test_export_as_json(configured):
    assert json.loads(_run("config_export", str(configured.pk), "--format", "json")) == (
        exported(configured)
    )


def test_apply_with_a_stale_fingerprint_fails_with_the_reason(configured, operator, tmp_path):
    document = exported(configured)
    campaign(document, "welcome")["name"] = "Hello"

    with pytest.raises(CommandError, match="configuration_changed"):
        _run(
            "config_apply",
            str(configured.pk),
            _write(tmp_path, document),
            "--actor",
            "ops",
            "--expect",
            "0" * 64,
        )

    assert Campaign.objects.get(slug="welcome").name == "Welcome points"


def test_apply_needs_expect_or_force(configured, operator, tmp_path):
    with pytest.raises(CommandError, match="--expect"):
        _run("config_apply", str(configured.pk), _write(tmp_path, {}), "--actor", "ops")


def test_invalid_documents_list_each_problem(configured, tmp_path):
    document = exported(configured)
    campaign(document, "cashback")["budget"] = "lots"

    with pytest.raises(CommandError) as raised:
        _run("config_plan", str(configured.pk), _write(tmp_path, document))

    assert "campaigns[cashback].budget" in str(raised.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("config_export", "nope"), "No partnership 'nope'"),
        (("config_plan", "{pk}", "/no/such/file"), "Cannot read /no/such/file"),
        (("config_plan", "{pk}", "{bad}"), "Not valid YAML"),
        (("config_apply", "{pk}", "{bad}", "--actor", "ghost", "--force"), "No user 'ghost'"),
    ],
)
def test_clear_errors_not_tracebacks(configured, tmp_path, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("triggers: [\n")
    args = [a.format(pk=configured.pk, bad=bad) for a in args]

    with pytest.raises(CommandError, match=message):
        _run(*args)
