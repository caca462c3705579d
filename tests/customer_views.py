"""What a customer may see of each entity, written out as the specification the server is held to.

Deliberately not derived from `loopline.customer.projections`: a field that reaches
customers there without being added here fails the tests that compare key sets.
"""

from __future__ import annotations

from typing import Any

ROW = {"id", "version", "created_at", "updated_at"}

CUSTOMER_FIELDS: dict[str, set[str]] = {
    "account": ROW | {"code", "name", "country"},
    "contact": ROW | {"account_id", "name", "email", "phone"},
    "shipment": ROW | {"account_id", "number", "shipped_at"},
    "shipment_line": ROW | {"account_id", "shipment_id", "product_model_id", "qty"},
    "case": ROW
    | {
        "account_id",
        "number",
        "title",
        "description",
        "contact_id",
        "origin",
        "status",
        "severity",
        "product_model_id",
        "category_code",
        "lot_no_reported",
        "advisory_id",
        "first_response_at",
        "resolved_at",
        "resolution",
    },
    "advisory": ROW | {"number", "severity", "status"},
    "advisory_recipient": ROW | {"account_id", "advisory_id", "contact_id", "state", "sent_at", "responded_at"},
    "remedy": ROW | {"account_id", "case_id", "number", "kind", "qty", "status"},
    "attachment": ROW | {"entity_type", "entity_id", "sha256", "kind", "state", "reason_code", "reason"},
    "product_model": ROW | {"sku", "name", "family"},
    "complaint_category": ROW | {"code", "labels"},
    "thread": ROW | {"subject_type", "subject_id", "title"},
    "thread_participant": ROW | {"thread_id", "user_id", "reason", "read_seq", "muted"},
    "message": ROW
    | {"thread_id", "thread_seq", "author_id", "visibility", "body", "mentions", "edited_at", "deleted_at"},
    "user": ROW | {"username", "display_name", "email", "role", "locale", "is_active"},
    "membership": ROW | {"user_id", "kind", "ref"},
}


def shapes_outside_the_views(changes: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Each put whose data is not exactly its entity's customer view (or of an entity customers never get)."""
    wrong = []
    for change in changes:
        if change["op"] != "put":
            continue
        expected = CUSTOMER_FIELDS.get(change["entity"])
        if expected is None or set(change["data"]) != expected:
            wrong.append((change["entity"], sorted(set(change["data"]) ^ (expected or set()))))
    return wrong
