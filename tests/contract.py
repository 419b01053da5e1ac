"""Contract-test helpers: where the vendors' OpenAPI specs live, loading them
once per session, and validating what an adapter sent / what a fixture claims
the provider answers against them (openapi-core 0.23).

The spec files are read in place (``CONNECTOR_SPECS_DIR`` or
``<repo>/../shared/specs``), never copied into the repo. Tests call
``require_spec(name)``, which skips cleanly when the directory is absent.

openapi-core 0.23 cannot deserialize a *parameter* whose schema ``type`` is a
list (``["string", "null"]``, or an enum ``$ref`` declared ``type: ["string"]``)
and fills an absent parameter's ``default: null`` in before validating it
against a non-null type. ShipMonk's spec has both. ``_normalise_parameters``
rewrites only parameter schemas, in memory: it inlines a ``$ref``, collapses
``[X, "null"]`` to ``X`` (a query string cannot carry JSON null) and drops a
``default: null``. Request/response *bodies* are validated as published, but
strictly: ``additionalProperties`` defaults to *forbid* (see ``load_spec``), and
``validate_request`` also rejects undeclared query parameters, which
openapi-core itself ignores.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"

# spec name -> file name in specs_dir()
SPECS = {
    "shipbob": "shipbob.json",
    "shipmonk": "shipmonk.json",
}


def specs_dir() -> Path:
    env = os.environ.get("CONNECTOR_SPECS_DIR")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "specs"


def spec_path(name: str) -> Path:
    return specs_dir() / SPECS.get(name, f"{name}.json")


def _normalise_parameters(data: dict) -> dict:
    schemas = data.get("components", {}).get("schemas", {})
    for item in data.get("paths", {}).values():
        if not isinstance(item, dict):
            continue
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for param in op.get("parameters", []):
                schema = param.get("schema") if isinstance(param, dict) else None
                if not isinstance(schema, dict):
                    continue
                ref = schema.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                    target = copy.deepcopy(schemas[ref.rsplit("/", 1)[-1]])
                    extra = {k: v for k, v in schema.items() if k != "$ref"}
                    schema.clear()
                    schema.update(target)
                    schema.update(extra)
                kind = schema.get("type")
                if isinstance(kind, list):
                    non_null = [t for t in kind if t != "null"]
                    if len(non_null) == 1:
                        schema["type"] = non_null[0]
                if "default" in schema and schema["default"] is None and "anyOf" not in schema:
                    del schema["default"]
    return data


# id(OpenAPI object) -> the raw spec dict (for the declared-query-parameter check)
_RAW: dict[int, dict] = {}


@functools.lru_cache(maxsize=None)
def load_spec(name: str):
    """The ``openapi_core.OpenAPI`` for ``name`` (cached for the whole session).
    Raises ``FileNotFoundError`` when the spec file is absent.

    Validation is strict about objects: ``additionalProperties`` defaults to
    *forbid*, so a misspelt or invented field in a request body (or a fixture)
    fails even where the vendor's schema leaves additional properties open."""
    from openapi_core import Config, OpenAPI

    path = spec_path(name)
    if not path.is_file():
        raise FileNotFoundError(str(path))
    raw = json.loads(path.read_text(encoding="utf-8"))
    if name == "shipbob":
        # ShipBob's spec passes openapi-core's own spec validation, but that
        # costs ~2-3 s; it is opt-in (CONNECTOR_VALIDATE_SPECS=1). Request and
        # response validation are the same either way.
        config = Config(additional_properties_default_policy="forbid")
        if not os.environ.get("CONNECTOR_VALIDATE_SPECS"):
            config = Config(spec_validator_cls=None, additional_properties_default_policy="forbid")
        api = OpenAPI.from_file_path(str(path), config=config)
    else:
        raw = _normalise_parameters(raw)
        # ShipMonk's spec fails strict validation (a default: null on a non-nullable
        # date-time), see specs/README.md
        api = OpenAPI.from_dict(
            raw, config=Config(spec_validator_cls=None, additional_properties_default_policy="forbid")
        )
    _RAW[id(api)] = raw
    return api


def _declared_query_params(spec, method: str, path: str) -> set[str] | None:
    raw = _RAW.get(id(spec))
    if raw is None:
        return None
    # concrete paths before templated ones (".../locations" before ".../{inventoryId}")
    for template, item in sorted(raw.get("paths", {}).items(), key=lambda kv: kv[0].count("{")):
        pattern = "^" + re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            params = list(item.get("parameters", [])) + list(item[method.lower()].get("parameters", []))
            return {p["name"] for p in params if isinstance(p, dict) and p.get("in") == "query"}
    return None


def require_spec(name: str):
    path = spec_path(name)
    if not path.is_file():
        pytest.skip(f"{name} spec not found at {path}; set CONNECTOR_SPECS_DIR")
    return load_spec(name)


def load_fixture(provider: str, name: str) -> Any:
    return json.loads((FIXTURES_DIR / provider / name).read_text(encoding="utf-8"))


def fixture_names(provider: str) -> list[str]:
    return sorted(p.name for p in (FIXTURES_DIR / provider).glob("*.json"))


# ---------------------------------------------------------------- validation


def _schema_errors(err, depth: int = 0) -> list[str]:
    """The leaf jsonschema errors (with their JSON paths), not the value dump."""
    lines = []
    for sub in getattr(err, "schema_errors", None) or getattr(err, "context", None) or ():
        path = "/".join(str(p) for p in getattr(sub, "absolute_path", []))
        lines.append(f"{'  ' * depth}- at /{path}: {str(getattr(sub, 'message', sub))[:300]}")
        if depth < 2:
            lines.extend(_schema_errors(sub, depth + 1)[:10])
    return lines


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {str(exc)[:300]}"]
    cause = exc.__cause__ or exc.__context__
    seen = 0
    while cause is not None and seen < 3:
        parts.append(f"caused by {type(cause).__name__}: {str(cause)[:200]}")
        parts.extend(_schema_errors(cause))
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return "\n".join(parts)


def validate_request(spec, request, *, allow_query: Iterable[str] = ()) -> None:
    """Assert a ``requests.PreparedRequest`` (e.g. ``responses.calls[i].request``)
    matches its operation: server, path, method, parameters, headers, security
    and body. openapi-core ignores undeclared query parameters, so they are
    checked here too: every query parameter sent must be declared by the
    operation (or listed in ``allow_query``, e.g. for a provider's own
    next-page links that are followed verbatim)."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest

    parts = urlsplit(request.url)
    declared = _declared_query_params(spec, request.method, parts.path)
    if declared is not None:
        sent = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
        unknown = sent - declared - set(allow_query)
        if unknown:
            raise AssertionError(
                f"{request.method} {request.url} sends query parameter(s) {sorted(unknown)} "
                f"the spec does not declare (declared: {sorted(declared)})"
            )
    try:
        spec.validate_request(RequestsOpenAPIRequest(request))
    except Exception as exc:  # openapi-core raises a family of exceptions
        raise AssertionError(
            f"{request.method} {request.url} does not match the spec:\n{_describe(exc)}"
        ) from None


def _mock_request(method: str, url: str):
    from openapi_core.testing import MockRequest

    parts = urlsplit(url)
    return MockRequest(f"{parts.scheme}://{parts.netloc}", method.lower(), parts.path)


def validate_response_body(
    spec,
    method: str,
    url: str,
    body: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    """Assert ``body`` (a fixture: JSON-able data or raw bytes) is a valid
    ``status`` response of ``method url`` per the spec."""
    from openapi_core.testing import MockResponse

    data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
    response = MockResponse(bytes(data), status_code=status, headers=dict(headers or {}), content_type=content_type)
    try:
        spec.validate_response(_mock_request(method, url), response)
    except Exception as exc:
        raise AssertionError(f"response {status} to {method} {url} does not match the spec:\n{_describe(exc)}") from None


def validate_response(spec, request, response) -> None:
    """Assert a real ``requests.Response`` to ``request`` matches the spec."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    try:
        spec.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))
    except Exception as exc:
        raise AssertionError(
            f"response {response.status_code} to {request.method} {request.url} does not match the spec:\n{_describe(exc)}"
        ) from None


def validate_calls(
    spec, calls: Iterable, *, responses_too: bool = True, allow_query: Iterable[str] = ()
) -> int:
    """Validate every request in ``responses.calls`` and, when ``responses_too``,
    every 2xx JSON response served to it. Returns the number of calls checked."""
    n = 0
    for call in calls:
        validate_request(spec, call.request, allow_query=allow_query)
        resp = call.response
        if (
            responses_too
            and resp is not None
            and not isinstance(resp, Exception)
            and 200 <= resp.status_code < 300
            and "json" in resp.headers.get("Content-Type", "")
        ):
            try:
                json.loads(resp.content)
            except ValueError:
                pass  # a deliberately malformed body (fault tests)
            else:
                validate_response(spec, call.request, resp)
        n += 1
    return n
