"""Sync mutation `attachment.link`: reference a photo by hash from a record the user can read.

The photo shows on the record only once the user has shown they hold it (see `service`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loopline.core.access import ScopedEntity
from loopline.customer.models import Case
from loopline.media.models import Sha256Hex
from loopline.media.service import link_photos
from loopline.quality.models import Defect, Inspection, Measurement, NonConformance
from loopline.syncing.registry import Handler, MutationContext, MutationRejected, parse_args, readable
from loopline.threads.models import Message

LINKABLE: dict[str, type[ScopedEntity]] = {
    model.__entity__: model for model in (Defect, Inspection, Measurement, NonConformance, Case, Message)
}


class AttachmentLinkArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str = Field(max_length=40)
    entity_id: str = Field(max_length=36)
    sha256: Sha256Hex
    kind: str = Field(default="photo", max_length=16)


async def link_attachment(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(AttachmentLinkArgs, raw)
    model = LINKABLE.get(args.entity)
    if model is None:
        raise MutationRejected(
            "not_linkable", f"Photos cannot be attached to {args.entity!r}.", {"linkable": sorted(LINKABLE)}
        )
    record = await readable(ctx, model, args.entity_id)
    [attachment] = await link_photos(
        ctx.session, ctx.principal, args.entity, record.id, record.scope_keys()[0], [args.sha256]
    )
    return attachment.version


mutations: dict[str, Handler] = {"attachment.link": link_attachment}
