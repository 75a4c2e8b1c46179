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
            assert [(p["name"], p["in"], p["schema"]) for p in operation["parameters"]] == [
                ("connection", "query", {"type": "string"})
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


# Values a client might send for a query parameter, inside its schema or not.
QUERY_VALUES = ["close", "CLOSE", "AAA", "", "0", "close,keep-alive", "%00"]


def test_each_route_answers_values_outside_or_inside_a_parameters_schema_as_documented(server, document):
    """`connection` was declared the enum `close` while every route answered 200 to
    `connection=AAA`: the document and the server disagreed. For each route and each declared
    parameter, a value inside the schema gets a documented success, one outside it a documented
    error; a value that is neither is the disagreement."""
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                schema = Draft202012Validator(parameter["schema"])
                for value in QUERY_VALUES:
                    response, _ = request(server, method.upper(), f"{path}?{parameter['name']}={value}")
                    inside = schema.is_valid(value)
                    documented = operation["responses"]
                    assert str(response.status) in documented, (path, method, value, response.status)
                    assert (response.status < 400) is inside, (path, method, value, response.status)
                    checked += 1
    assert checked == len(QUERY_VALUES) * 2 * len(document["paths"])
