"""The OpenAPI schema and the browsable docs: public, generated from the code, assets local."""

import re

import orjson
import pytest
import yaml
from django.test import Client

from config.errors import ErrorCode

pytestmark = pytest.mark.django_db


@pytest.fixture
def anonymous() -> Client:
    return Client()


def test_the_schema_is_public_in_yaml_and_json(anonymous):
    as_yaml = anonymous.get("/api/schema/")
    as_json = anonymous.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert as_yaml.status_code == 200, as_yaml.content[:300]
    assert as_json.status_code == 200, as_json.content[:300]
    assert yaml.safe_load(as_yaml.content) == orjson.loads(as_json.content)


def test_the_ingest_operation_documents_every_error_it_can_answer(anonymous):
    schema = orjson.loads(anonymous.get("/api/schema/", HTTP_ACCEPT="application/json").content)

    responses = schema["paths"]["/partnerships/{partnership_id}/triggers"]["post"]["responses"]
    statuses = {"200", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503"}
    assert set(responses) >= statuses
    documented = {
        example["value"]["code"]
        for response in responses.values()
        for example in response["content"]["application/json"].get("examples", {}).values()
    }
    expected = {
        ErrorCode.INVALID_TOKEN,
        ErrorCode.UNAUTHORIZED_REQUEST,
        ErrorCode.PARTNERSHIP_DOES_NOT_EXIST,
        ErrorCode.TRIGGER_DOES_NOT_EXIST,
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        ErrorCode.VALIDATION_ERROR,
        ErrorCode.RATE_LIMITED,
        ErrorCode.SERVICE_UNAVAILABLE,
    }
    assert {code.value for code in expected} <= documented
    assert schema["components"]["securitySchemes"]["PartnerApiKey"]["name"] == "x-api-key"


def test_the_docs_page_loads_its_assets_from_this_server(anonymous):
    page = anonymous.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert assets, html[:500]
    for asset in assets:
        assert asset.startswith("/static/"), asset  # no CDN
        served = anonymous.get(asset)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content), asset


def test_pilot_styles_are_served(anonymous):
    response = anonymous.get("/static/admin/css/base.css")

    assert response.status_code == 200
    assert b"body" in b"".join(response.streaming_content)


def test_the_user_token_endpoints_document_the_bearer_scheme_and_its_refusals(anonymous):
    schema = orjson.loads(anonymous.get("/api/schema/", HTTP_ACCEPT="application/json").content)

    assert schema["components"]["securitySchemes"]["UserToken"]["scheme"] == "bearer"
    paths = schema["paths"]
    for path, method in [
        ("/partnerships/{partnership_id}/triggers", "post"),
        ("/partnerships/{partnership_id}/users/{external_user_id}/balance", "get"),
        ("/partnerships/{partnership_id}/users/{external_user_id}/rewards", "get"),
    ]:
        operation = paths[path][method]
        assert {"UserToken": []} in operation["security"], path
        documented = {
            example["value"]["code"]
            for response in operation["responses"].values()
            for example in response["content"]["application/json"].get("examples", {}).values()
        }
        assert {ErrorCode.TOKEN_EXPIRED, ErrorCode.TOKEN_WRONG_USER} <= documented, path
    tokens = paths["/partnerships/{partnership_id}/users/{external_user_id}/tokens"]
    assert tokens["post"]["security"] == [{"PartnerApiKey": []}]
    assert set(tokens) == {"post", "delete"}
