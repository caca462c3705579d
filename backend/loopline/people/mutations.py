"""Sync mutation `user.set_locale`: the language a user chose, kept on their row so it follows them.

It goes through the push (not a REST call) so that choosing a language works offline like
every other change, and reaches the user's other devices through their pull.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopline.people.models import User
from loopline.syncing.registry import Handler, MutationContext, parse_args, readable, require

# The languages the app is translated into; anything else would leave the user without text.
Locale = Literal["en", "zh-CN"]


class SetLocaleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=36)
    locale: Locale


async def set_locale(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(SetLocaleArgs, raw)
    # A user nobody may read is missing; a colleague's row is readable but not theirs to change.
    user = await readable(ctx, User, args.id)
    require(user.id == ctx.principal.user_id, "forbidden", "A user may set only their own language.")
    if user.locale != args.locale:
        user.locale = args.locale
        await ctx.session.flush()
    return user.version


mutations: dict[str, Handler] = {"user.set_locale": set_locale}
