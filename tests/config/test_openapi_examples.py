"""The served OpenAPI examples work as sent: each request example answers its documented status.

A request example's documented answer is the response example of the same name (see
config/openapi_examples.py); a replay's is the response example named ``Replayed``.
"""

from urllib.parse import urlencode

import jsonschema_rs
import orjson
import pytest

from config import openapi_examples as examples
from tests.support import process_queued
from tests.wsgi import call

pytestmark = pytest.mark.django_db(transaction=True)

REPLAYED = "Replayed"


@pytest.fixture
def schema(transactional_db) -> dict:
    answer = call("GET", "/api/schema/", headers={"Accept": "application/json"})
    assert answer.status == 200, answer.body[:300]
    return answer.json()


MANAGEMENT = "/management/"


def operations(schema: dict, *, management: bool = False):
    """The partner API's operations (sent here with the world's key), or the management
    API's (tests/mgmt/ sends those with staff tokens)."""
    for path, item in schema["paths"].items():
        if path.startswith(MANAGEMENT) != management:
            continue
        for method, operation in item.items():
            yield method.upper(), path, operation


def json_content(part: dict) -> dict:
    return part.get("content", {}).get("application/json", {})


def examples_of(response: dict) -> dict:
    """Its examples of every media type (a report's 200 is JSON or CSV)."""
    return {
        name: example
        for content in response.get("content", {}).values()
        for name, example in content.get("examples", {}).items()
    }


def documented_status(operation: dict, name: str) -> str:
    statuses = [
        status
        for status, response in operation["responses"].items()
        if name in examples_of(response)
    ]
    assert len(statuses) == 1, f"{operation['operationId']}: {name} answers {statuses}"
    return statuses[0]


def request_examples(schema: dict):
    for method, path, operation in operations(schema):
        body = json_content(operation.get("requestBody", {}))
        for name, example in body.get("examples", {}).items():
            yield method, path, operation, name, example["value"]


def send(world, method: str, path: str, value: dict):
    answer = call(
        method,
        _path(path, world),
        body=orjson.dumps(value),
        headers={"Content-Type": "application/json", "X-Api-Key": world.api_key},
    )
    process_queued()  # the workers, keeping up
    return answer


def _path(path: str, world) -> str:
    """The path of the examples' world: its partnership, and the examples' user."""
    return path.format(partnership_id=world.partnership.id, external_user_id=examples.USER)


def validator(schema: dict, part: dict) -> jsonschema_rs.Validator:
    root = {**json_content(part)["schema"], "components": schema["components"]}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def query_examples(schema: dict):
    """(method, path, operation, name, query): the query parameters whose examples share a name,
    sent together (OpenAPI has examples per parameter)."""
    for method, path, operation in operations(schema):
        queries: dict[str, dict[str, str]] = {}
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                for name, example in parameter.get("examples", {}).items():
                    queries.setdefault(name, {})[parameter["name"]] = example["value"]
        for name, query in queries.items():
            yield method, path, operation, name, query


def test_every_operation_has_explicit_examples(schema):
    for method, path, operation in operations(schema):
        documented = examples_of(operation["responses"]["200"])
        assert documented, f"{method} {path}"
        if "requestBody" in operation:
            assert json_content(operation["requestBody"]).get("examples"), f"{method} {path}"


def test_every_management_body_has_an_example(schema):
    bodies = 0
    for method, path, operation in operations(schema, management=True):
        if "requestBody" in operation:
            assert json_content(operation["requestBody"]).get("examples"), f"{method} {path}"
            bodies += 1
    assert bodies >= 10


def test_every_example_matches_its_schema(schema):
    for method, path, operation in [*operations(schema), *operations(schema, management=True)]:
        parts = [operation.get("requestBody"), *operation["responses"].values()]
        for part in filter(None, parts):
            if not json_content(part).get("examples"):
                continue
            check = validator(schema, part)
            for name, example in json_content(part)["examples"].items():
                errors = [error.message for error in check.iter_errors(example["value"])]
                assert not errors, f"{method} {path} {name}: {errors}"


def test_each_request_example_answers_its_documented_status(schema, example_world):
    sent = 0
    for method, path, operation, name, value in request_examples(schema):
        answer = send(example_world, method, path, value)

        assert str(answer.status) == documented_status(operation, name), (name, answer.body)
        assert answer.json()["code"] == "ok" if answer.status == 200 else answer.json()["message"]
        sent += 1
    assert sent >= 4


def test_each_query_example_answers_its_documented_status(schema, example_world):
    sent = 0
    for method, path, operation, name, query in query_examples(schema):
        answer = call(
            method,
            _path(path, example_world),
            query=urlencode(query),
            headers={"X-Api-Key": example_world.api_key},
        )

        assert str(answer.status) == documented_status(operation, name), (name, answer.body)
        if answer.headers["content-type"].startswith("application/json"):
            assert (
                answer.json()["code"] == "ok" if answer.status == 200 else answer.json()["message"]
            )
        else:  # CSV: the documented columns
            documented = examples_of(operation["responses"]["200"])[name]["value"]
            assert answer.body.decode().split("\r\n")[0] == documented.split("\r\n")[0]
        sent += 1
    assert sent >= 8


def test_a_replayed_example_answers_as_documented(schema, example_world):
    replayable = [
        (method, path, operation, value)
        for method, path, operation, _, value in request_examples(schema)
        if "idempotency_key" in value
    ]
    assert len(replayable) >= 2  # ingest and reversal

    for method, path, operation, value in replayable:
        first = send(example_world, method, path, value)
        again = send(example_world, method, path, value)

        status = documented_status(operation, REPLAYED)
        assert str(again.status) == status, again.body
        assert again.headers["idempotent-replayed"] == "true"
        assert "Idempotent-Replayed" in operation["responses"][status]["headers"]
        assert "idempotent-replayed" not in first.headers
        # The original result; an event's status is its current one.
        assert {**again.json()["data"], "status": None} == {**first.json()["data"], "status": None}
