"""Bad input in a push: only a malformed envelope refuses it whole; bad content is one mutation's rejection.

A device resends a refused push unchanged, so a request-level 4xx for one mutation's
content would stop its outbox for ever. These pushes are sent as raw JSON bytes, so they
can carry what a browser's `JSON.stringify` may write and the Python engine never would
(a lone surrogate escape, a number beyond a double).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Login
from tests.sync_helpers import Device, batch_of_lot_018, new_id, new_thread

HUGE_FLOAT = "__huge_float__"


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def raw_json(payload: Any) -> bytes:
    """ASCII JSON: NULs and lone surrogates travel as `\\u` escapes, as a browser sends them."""
    return json.dumps(payload).replace(f'"{HUGE_FLOAT}"', "1e400").encode()


async def post_raw(device: Device, path: str, payload: Any) -> Any:
    headers = {**device.headers, "Content-Type": "application/json"}
    return await device.client.post(path, headers=headers, content=raw_json(payload))


def push_of(device: Device, mutations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"client_id": device.client_id, "schema_version": 1, "mutations": mutations}


@pytest.fixture
async def wang(world_client: AsyncTestClient[Any], world_login: Login) -> Device:
    return Device(world_client, await world_login("wang.lei"))


@pytest.fixture
async def thread_id(world_client: AsyncTestClient[Any], wang: Device) -> str:
    """A fresh thread of wang's, made from another device of his so `wang` starts at mid 1."""
    tablet = Device(world_client, wang.headers)
    return await new_thread(world_client, tablet, await batch_of_lot_018(world_client, wang.headers))


UNFIT_ARGS = {
    "a NUL in a string": ({"body": "before\x00after"}, "invalid_character"),
    "a NUL in a key": ({"body": "fine", "mentions\x00": []}, "invalid_character"),
    "a lone high surrogate": ({"body": "broken \ud800 pair"}, "invalid_character"),
    "a lone low surrogate as a key": ({"body": "fine", "\udc00": 1}, "invalid_character"),
    "an integer beyond 64 bits": ({"body": "fine", "mentions": [2**64]}, "invalid_value"),
    "a number beyond a double": ({"body": HUGE_FLOAT}, "invalid_value"),
    "a nesting past the limit": ({"body": "fine", "mentions": nested(40)}, "too_deep"),
    "a nesting past the fast decoder": ({"body": "fine", "mentions": nested(700)}, "too_deep"),
    "args that are no object": ("just text", "validation_error"),
    "a body over its length": ({"body": "x" * 20_001}, "validation_error"),
}


@pytest.mark.parametrize("unfit", UNFIT_ARGS.values(), ids=UNFIT_ARGS.keys())
async def test_a_mutation_with_unfit_content_is_rejected_alone_and_the_queue_moves_on(
    wang: Device, thread_id: str, unfit: tuple[Any, str]
) -> None:
    args, code = unfit
    post = {"thread_id": thread_id, "visibility": "internal"}
    unfit_args = {**post, "id": new_id(), **args} if isinstance(args, dict) else args
    mutations = [
        wang.mutation("message.post", {**post, "id": new_id(), "body": "before the bad one"}),
        wang.mutation("message.post", unfit_args),
        wang.mutation("message.post", {**post, "id": new_id(), "body": "after the bad one"}),
    ]
    for attempt in ("first", "resend"):
        response = await post_raw(wang, "/api/v1/sync/push", push_of(wang, mutations))
        assert response.status_code == 200, (attempt, response.text)
        answer = response.json()
        assert answer["last_mid"] == 3
        if attempt == "first":
            assert [r["status"] for r in answer["results"]] == ["applied", "rejected", "applied"]
            assert answer["results"][1]["error"]["code"] == code
        else:
            assert [r["original_status"] for r in answer["results"]] == ["applied", "rejected", "applied"]


ENVELOPES = {
    "a client id that is no UUID": ({"client_id": "device-1"}, "invalid_client_id"),
    "a client id with a NUL": ({"client_id": "00000000-0000-4000-8000-00000000000\x00"}, "invalid_client_id"),
    "a name that is no string": ({"name": 5}, "validation_error"),
    "a name with a NUL": ({"name": "message\x00post"}, "validation_error"),
    "a mutation id with a lone surrogate": ({"id": "id-\ud800"}, "validation_error"),
    "a mid that is no integer": ({"mid": "one"}, "validation_error"),
    "an unknown envelope field named by a lone surrogate": ({"\ud800": 1}, "validation_error"),
}


@pytest.mark.parametrize("envelope", ENVELOPES.values(), ids=ENVELOPES.keys())
async def test_only_a_malformed_envelope_refuses_a_push_whole(
    wang: Device, envelope: tuple[dict[str, Any], str]
) -> None:
    fields, code = envelope
    mutation = {**wang.mutation("thread.read", {"thread_id": new_id(), "up_to_seq": 0})}
    request = push_of(wang, [mutation])
    for key, value in fields.items():
        (request if key == "client_id" else mutation)[key] = value
    response = await post_raw(wang, "/api/v1/sync/push", request)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


async def test_a_pull_with_a_client_id_that_is_no_uuid_is_refused(wang: Device) -> None:
    request = {"client_id": "my-tablet", "schema_version": 1, "cursor": None, "limit": 10}
    response = await post_raw(wang, "/api/v1/sync/pull", request)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_client_id"


async def test_a_live_hello_with_a_client_id_that_is_no_uuid_is_answered_with_its_code(
    world_client: AsyncTestClient[Any], wang: Device
) -> None:
    ticket = (await world_client.post("/api/v1/ws/ticket", headers=wang.headers)).json()["ticket"]
    with await world_client.websocket_connect(f"/api/v1/ws?ticket={ticket}") as socket:
        socket.send_json({"type": "hello", "client_id": "my-tablet", "cursor": None})
        frame = socket.receive_json()
    assert frame["type"] == "error"
    assert frame["error"]["code"] == "invalid_client_id"
