"""The OpenAPI document is valid, lists exactly the routes served, and every answer matches it."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.app.test_server import request

pytestmark = pytest.mark.app


@pytest.fixture(scope="module")
def document(server):
    response, body = request(server, "GET", "/openapi.json")
    assert response.status == 200
    assert response.getheader("content-type") == "application/json"
    return json.loads(body)


def validator(document, ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref, "components": document["components"]})


def test_document_is_valid_openapi_3(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_document_lists_exactly_the_served_routes(document):
    assert sorted(document["paths"]) == [
        "/",
        "/favicon.svg",
        "/health",
        "/index.html",
        "/live.js",
        "/openapi.json",
        "/style.css",
    ]
    for item in document["paths"].values():
        assert sorted(item) == ["get", "head"]
        for operation in item.values():
            assert [(p["name"], p["in"], p["schema"]["enum"]) for p in operation["parameters"]] == [
                ("connection", "query", ["close"])
            ]


def test_every_documented_route_answers_as_documented(server, document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            response, body = request(server, method.upper(), path)
            assert str(response.status) in operation["responses"], (method, path, response.status)
            content = operation["responses"][str(response.status)].get("content")
            if method == "head":
                assert body == b"" and content is None
                continue
            ((media_type, spec),) = content.items()
            if media_type == "application/json":
                assert response.getheader("content-type") == "application/json"
                schema = spec["schema"]
                instance = json.loads(body)
                if "$ref" in schema:
                    validator(document, schema["$ref"]).validate(instance)
                else:
                    Draft202012Validator(schema).validate(instance)


def test_health_answer_matches_the_health_schema_strictly(server, document):
    _, body = request(server, "GET", "/health")
    validator(document, "#/components/schemas/Health").validate(json.loads(body))
    assert not validator(document, "#/components/schemas/Health").is_valid({"hostname": "x"})


@pytest.mark.parametrize("method,path,status", [("GET", "/missing", 404), ("PUT", "/health", 405)])
def test_error_answers_match_the_error_schema(server, document, method, path, status):
    response, body = request(server, method, path)
    assert response.status == status
    validator(document, "#/components/schemas/Error").validate(json.loads(body))


def test_405_is_documented_with_its_allow_header(document):
    documented = document["paths"]["/health"]["get"]["responses"]["405"]
    assert "Allow" in documented["headers"]
