"""Request bodies are checked before they are parsed: size, media type and JSON nesting, on every route."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from loopline.core.input_guard import MAX_JSON_DEPTH, json_depth
from loopline.core.settings import Settings
from tests.conftest import Login

LOGIN = "/api/v1/auth/login"
JSON = {"Content-Type": "application/json"}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b'{"a": 1}', 1),
        (b'{"a": [{"b": []}]}', 4),
        (nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH),
        (b"[" * 100_000, 100_000),
        # Brackets inside strings are text, escaped quotes included.
        (b'{"p": "[[[[{{{{", "q": "\\"[[[["}', 1),
        (b'["\\\\", [[]]]', 3),
        (b'["\\\\\\"[", [[]]]', 3),
        (b'["\\u005b", []]', 2),
        # A string left open hides nothing a decoder would reach: it stops there.
        (b'[[["[[[[[[[[', 3),
        (b'"\\"' + b"[" * 1000, 0),
    ],
)
def test_json_depth_counts_the_nesting_a_decoder_reaches(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


async def test_deeply_nested_json_is_refused_before_sign_in_and_after(
    client: AsyncTestClient[Any], login: Login
) -> None:
    for body in (b"[" * 100_000, nested(MAX_JSON_DEPTH + 1)):
        response = await client.post(LOGIN, content=body, headers=JSON)
        assert error_of(response) == (400, "json_too_deep"), response.text
        assert response.json()["error"]["details"] == {"max_depth": MAX_JSON_DEPTH}
    too_deep = {"username": "admin", "password": "x", "extra": json.loads(nested(MAX_JSON_DEPTH + 5))}
    response = await client.post("/api/v1/sync/pull", json=too_deep, headers=await login("admin"))
    assert error_of(response) == (400, "json_too_deep")

    # Brackets in a string are not nesting: this is an ordinary wrong password.
    response = await client.post(LOGIN, json={"username": "admin", "password": "[" * 200})
    assert error_of(response) == (401, "invalid_credentials")


async def test_json_routes_take_only_json(client: AsyncTestClient[Any], login: Login) -> None:
    credentials = json.dumps({"username": "admin", "password": "loopline-demo"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post(LOGIN, content=credentials, headers=headers)
        assert error_of(response) == (415, "unsupported_media_type"), (content_type, response.text)
    hooks = await client.post(
        "/api/v1/admin/webhooks",
        content=json.dumps({"url": "https://hooks.example.com/"}),
        headers={**await login("admin"), "Content-Type": "text/plain"},
    )
    assert error_of(hooks) == (415, "unsupported_media_type")

    for content_type in ("application/json", "application/json; charset=utf-8", "application/merge-patch+json"):
        response = await client.post(LOGIN, content=credentials, headers={"Content-Type": content_type})
        assert response.status_code == 200, (content_type, response.text)


async def test_a_body_over_the_limit_is_refused_unread(client: AsyncTestClient[Any], demo_settings: Settings) -> None:
    limit = demo_settings.max_body_bytes
    padded = json.dumps({"username": "admin", "password": "x" * limit}).encode()
    response = await client.post(LOGIN, content=padded, headers=JSON)
    assert error_of(response) == (413, "payload_too_large")


async def test_a_number_no_json_column_can_hold_is_the_callers_mistake_not_a_server_error(
    client: AsyncTestClient[Any], login: Login, demo_ids: dict[str, str]
) -> None:
    body = {"account_id": demo_ids["A-001"], "name": "Ines Vogel", "consents": {"service_notices": 2**70}}
    response = await client.post("/api/v1/admin/contacts", json=body, headers=await login("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_value"
