"""Admin endpoints for master data, made from the table models themselves.

`master_data_controller(Plant, "plants")` gives ``POST /api/v1/admin/plants`` (create)
and ``PATCH /api/v1/admin/plants/{id}`` (change the given fields), admin only. Input
schemas are derived from the model so that validation and the OpenAPI document follow
the table definition. Fields that depend on other rows (a shipment line's account) are
filled by a `derive` hook and are not accepted from the client.
"""

# No `from __future__ import annotations` here: Litestar reads the handler annotations,
# which name classes made at run time.

from typing import Any, Optional

from litestar import Controller, patch, post
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo
from sqlalchemy import select
from sqlmodel import col

from loopline.core.access import ScopedEntity
from loopline.core.api import Derive, IdPath, PrincipalDep, RuntimeDep
from loopline.core.auth import admin_only
from loopline.core.errors import NotFound

MANAGED_FIELDS = frozenset({"id", "version", "created_at", "updated_at"})


def _input_fields(model: type[ScopedEntity], exclude: frozenset[str]) -> dict[str, FieldInfo]:
    return {
        name: field
        for name, field in model.model_fields.items()
        if name not in MANAGED_FIELDS and name not in exclude and name not in model.__private__
    }


def create_schema(model: type[ScopedEntity], exclude: frozenset[str] = frozenset()) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (field.annotation, FieldInfo.merge_field_infos(field))
        for name, field in _input_fields(model, exclude).items()
    }
    return create_model(f"{model.__name__}Create", __config__=ConfigDict(extra="forbid"), **fields)


def patch_schema(model: type[ScopedEntity], exclude: frozenset[str] = frozenset()) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (Optional[field.annotation], FieldInfo.merge_field_infos(field, default=None))  # noqa: UP045
        for name, field in _input_fields(model, exclude).items()
    }
    return create_model(f"{model.__name__}Patch", __config__=ConfigDict(extra="forbid"), **fields)


async def _no_derive(_session: Any, values: dict[str, Any]) -> dict[str, Any]:
    return values


def master_data_controller(
    model: type[ScopedEntity],
    path: str,
    *,
    derive: Derive = _no_derive,
    derived_fields: frozenset[str] = frozenset(),
    tag: str = "admin",
) -> type[Controller]:
    """A controller with create and patch for one master-data model (admin only)."""
    Create = create_schema(model, derived_fields)  # noqa: N806
    Patch = patch_schema(model, derived_fields)  # noqa: N806
    entity = model.__entity__

    async def create_entity(
        self: Controller,
        runtime: RuntimeDep,
        principal: PrincipalDep,
        data: JSONBody[Create],  # type: ignore[valid-type]
    ) -> model:  # type: ignore[valid-type]
        async with runtime.unit_of_work(actor=principal.user_id, command=f"admin.{entity}.create") as session:
            values = await derive(session, data.model_dump())  # type: ignore[attr-defined]
            row = model.model_validate(values)
            session.add(row)
        return row

    async def patch_entity(
        self: Controller,
        runtime: RuntimeDep,
        principal: PrincipalDep,
        data: JSONBody[Patch],  # type: ignore[valid-type]
        entity_id: IdPath,
    ) -> model:  # type: ignore[valid-type]
        async with runtime.unit_of_work(actor=principal.user_id, command=f"admin.{entity}.update") as session:
            row = (await session.scalars(select(model).where(col(model.id) == entity_id))).one_or_none()
            if row is None:
                raise NotFound(entity, entity_id)
            current = {name: getattr(row, name) for name in model.model_fields}
            changes = data.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
            merged = await derive(session, {**current, **changes})
            checked = model.model_validate(merged)
            for name in merged:
                if name not in MANAGED_FIELDS and getattr(row, name) != getattr(checked, name):
                    setattr(row, name, getattr(checked, name))
        return row

    handlers = {
        "create": post(
            "/",
            operation_id=f"admin_create_{entity}",
            summary=f"Create a {entity}",
            status_code=201,
            guards=[admin_only],
        )(create_entity),
        "patch": patch(
            "/{entity_id:str}",
            operation_id=f"admin_update_{entity}",
            summary=f"Change a {entity}",
            guards=[admin_only],
        )(patch_entity),
    }
    return type(
        f"{model.__name__}AdminController", (Controller,), {"path": f"/admin/{path}", "tags": [tag], **handlers}
    )
