"""Sync mutations of threads: post, edit and delete messages, mark a thread read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from loopline.core.entity import customer_thread_scope, thread_scope
from loopline.loop.cases import answer_by_reply
from loopline.media.models import Sha256Hex
from loopline.media.service import link_photos
from loopline.syncing.registry import (
    BatchHandler,
    Handler,
    MutationContext,
    MutationRejected,
    Outcome,
    content_conflict,
    id_taken,
    not_found,
    parse_args,
    readable,
    readable_ids,
    require,
)
from loopline.threads.models import Message, Thread, Visibility
from loopline.threads.service import (
    MAX_MENTIONS,
    MessageDraft,
    add_participants_to_threads,
    append_messages,
    mark_read,
    mentionable_users,
    mentioned_usernames,
    tombstone,
)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessagePostArgs(_Args):
    id: str = Field(min_length=1, max_length=36)
    thread_id: str = Field(max_length=36)
    body: str = Field(min_length=1, max_length=20000)
    visibility: Visibility = Visibility.INTERNAL
    # Absent: the body's `@username`s. Given (even empty): exactly these.
    mentions: list[str] | None = Field(default=None, max_length=MAX_MENTIONS)
    photo_hashes: list[Sha256Hex] = Field(default_factory=list, max_length=20)


async def post_messages(ctx: MutationContext, raws: list[dict[str, Any]]) -> list[Outcome]:
    """`message.post` for a run of messages: every check first, then a few set-based writes."""
    outcomes: list[Outcome] = []
    parsed: list[MessagePostArgs | None] = []
    for raw in raws:
        try:
            parsed.append(parse_args(MessagePostArgs, raw))
            outcomes.append(None)
        except MutationRejected as rejection:
            parsed.append(None)
            outcomes.append(rejection)
    valid = [args for args in parsed if args is not None]
    threads = await readable_ids(ctx, Thread, (args.thread_id for args in valid))
    # What each id holds once the earlier messages of this run are in: a resend compares, never re-posts.
    # Optimistically, ids are taken to be new: the insert of a used one fails, and the careful pass compares.
    # A used id of a message this user cannot read holds None: its content is not theirs to compare.
    content: dict[str, tuple[dict[str, Any] | None, int]] = {}
    if ctx.careful:
        stored = list(
            await ctx.session.scalars(select(Message).where(col(Message.id).in_({args.id for args in valid})))
        )
        visible = await readable_ids(ctx, Message, (message.id for message in stored))
        content = {
            message.id: (message.public_data() if message.id in visible else None, message.version)
            for message in stored
        }
    mentionable = await mentionable_users(
        ctx.session, ctx.principal, (name for args in valid for name in _mentions(args))
    )
    mentioned = {user.username: user for user in mentionable}
    drafts: list[tuple[int, MessagePostArgs]] = []
    for index, args in enumerate(parsed):
        if args is None:
            continue
        outcome = _check_post(ctx, args, args.thread_id in threads, content)
        outcomes[index] = outcome
        if outcome is None:
            content[args.id] = (_post_content(ctx, args), 1)
            drafts.append((index, args))
    posts = [
        MessageDraft(
            id=args.id,
            thread_id=args.thread_id,
            author_id=ctx.principal.user_id,
            body=args.body,
            visibility=args.visibility,
            mentions=sorted({name for name in _mentions(args) if name in mentioned}),
        )
        for _, args in drafts
    ]
    await append_messages(ctx.uow, posts)
    # Whoever may read a thread only as its participant is one already: only the others join as authors.
    author = [] if Thread.read_as_participant_only(ctx.principal) else [(ctx.principal.user_id, "author")]
    await add_participants_to_threads(
        ctx.session,
        (
            (post.thread_id, user_id, reason)
            for post in posts
            for user_id, reason in [*author, *((mentioned[name].id, "mentioned") for name in post.mentions)]
        ),
    )
    for (index, args), post in zip(drafts, posts, strict=True):
        if args.photo_hashes:
            scope = (
                customer_thread_scope(post.thread_id)
                if post.visibility == Visibility.CUSTOMER
                else thread_scope(post.thread_id)
            )
            await link_photos(ctx.session, ctx.principal, "message", post.id, scope, args.photo_hashes)
        outcomes[index] = 1  # a new message's first version
    if ctx.principal.is_staff:
        replies = {post.thread_id for post in posts if post.visibility == Visibility.CUSTOMER}
        if replies:
            await answer_by_reply(ctx.session, replies, now=ctx.now)
    return outcomes


def _mentions(args: MessagePostArgs) -> list[str]:
    return mentioned_usernames(args.body) if args.mentions is None else args.mentions


def _post_content(ctx: MutationContext, args: MessagePostArgs) -> dict[str, Any]:
    """The fields a resend of the same id must match."""
    return {
        "thread_id": args.thread_id,
        "author_id": ctx.principal.user_id,
        "body": args.body,
        "visibility": args.visibility.value,
    }


def _check_post(
    ctx: MutationContext,
    args: MessagePostArgs,
    thread_readable: bool,
    content: dict[str, tuple[dict[str, Any] | None, int]],
) -> Outcome:
    """None when the message is to be posted; else the version of the same message, or the rejection."""
    if not thread_readable:
        return not_found(Thread, args.thread_id)
    if not (ctx.principal.is_staff or args.visibility == Visibility.CUSTOMER):
        return MutationRejected("forbidden", "Customers post customer-visible messages only.")
    if args.id in content:
        stored, version = content[args.id]
        if stored is None:
            return id_taken()
        return content_conflict(args.id, stored, _post_content(ctx, args)) or version
    return None


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


mutations: dict[str, Handler | BatchHandler] = {
    "message.post": BatchHandler(post_messages),
    "message.edit": edit_message,
    "message.delete": delete_message,
    "thread.read": read_thread,
}
