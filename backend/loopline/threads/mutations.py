"""Sync mutations of threads: post, edit and delete messages, mark a thread read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loopline.core.entity import customer_thread_scope, thread_scope
from loopline.media.models import Sha256Hex
from loopline.media.service import link_photos
from loopline.syncing.registry import Handler, MutationContext, check_same_content, parse_args, readable, require
from loopline.threads.models import Message, Thread, Visibility
from loopline.threads.service import add_participants, append_message, mark_read, tombstone, users_by_username


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessagePostArgs(_Args):
    id: str = Field(min_length=1, max_length=36)
    thread_id: str = Field(max_length=36)
    body: str = Field(min_length=1, max_length=20000)
    visibility: Visibility = Visibility.INTERNAL
    mentions: list[str] = Field(default_factory=list, max_length=50)
    photo_hashes: list[Sha256Hex] = Field(default_factory=list, max_length=20)


async def post_message(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(MessagePostArgs, raw)
    thread = await readable(ctx, Thread, args.thread_id)
    require(
        ctx.principal.is_staff or args.visibility == Visibility.CUSTOMER,
        "forbidden",
        "Customers post customer-visible messages only.",
    )
    existing = await ctx.session.get(Message, args.id)
    if existing is not None:
        check_same_content(
            existing,
            {
                "thread_id": thread.id,
                "author_id": ctx.principal.user_id,
                "body": args.body,
                "visibility": args.visibility.value,
            },
        )
        return existing.version
    mentioned = await users_by_username(ctx.session, args.mentions)
    message = await append_message(
        ctx.session,
        thread,
        message_id=args.id,
        author_id=ctx.principal.user_id,
        body=args.body,
        visibility=args.visibility,
        mentions=[u.username for u in mentioned],
    )
    await add_participants(
        ctx.session, thread, [(ctx.principal.user_id, "author"), *((u.id, "mentioned") for u in mentioned)]
    )
    scope = customer_thread_scope(thread.id) if args.visibility == Visibility.CUSTOMER else thread_scope(thread.id)
    await link_photos(ctx.session, "message", message.id, scope, args.photo_hashes, ctx.principal.user_id)
    return message.version


class MessageEditArgs(_Args):
    id: str = Field(max_length=36)
    body: str = Field(min_length=1, max_length=20000)


class MessageDeleteArgs(_Args):
    id: str = Field(max_length=36)


async def _own_message(ctx: MutationContext, message_id: str) -> Message:
    message = await readable(ctx, Message, message_id)
    require(message.author_id == ctx.principal.user_id, "forbidden", "Only the author may change a message.")
    require(message.deleted_at is None, "message_deleted", "The message was deleted.")
    return message


async def edit_message(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(MessageEditArgs, raw)
    message = await _own_message(ctx, args.id)
    if message.body != args.body:
        message.body = args.body
        message.edited_at = ctx.now
        await ctx.session.flush()
    return message.version


async def delete_message(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(MessageDeleteArgs, raw)
    message = await readable(ctx, Message, args.id)
    require(message.author_id == ctx.principal.user_id, "forbidden", "Only the author may delete a message.")
    if message.deleted_at is None:
        tombstone(message, ctx.now)
        await ctx.session.flush()
    return message.version


class ThreadReadArgs(_Args):
    thread_id: str = Field(max_length=36)
    up_to_seq: int = Field(ge=0, le=2**31 - 1)


async def read_thread(ctx: MutationContext, raw: dict[str, Any]) -> int | None:
    args = parse_args(ThreadReadArgs, raw)
    thread = await readable(ctx, Thread, args.thread_id)
    await mark_read(ctx.session, thread, ctx.principal.user_id, args.up_to_seq, "reader")
    return None


mutations: dict[str, Handler] = {
    "message.post": post_message,
    "message.edit": edit_message,
    "message.delete": delete_message,
    "thread.read": read_thread,
}
