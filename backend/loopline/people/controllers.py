"""Sign-in (`/auth/*`), the current user (`/me`) and user administration."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post
from litestar.params import FromQuery, JSONBody
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import col

from loopline.core.access import Role
from loopline.core.api import Cursor, IdPath, Limit, PrincipalDep, RuntimeDep, SessionDep
from loopline.core.auth import admin_only
from loopline.core.errors import NotFound
from loopline.core.pagination import Page, equal_filters, list_readable
from loopline.people import service
from loopline.people.models import Membership, MembershipKind, User


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class UserRead(BaseModel):
    id: str
    username: str
    display_name: str
    email: str | None
    role: Role
    locale: str
    is_active: bool


class MembershipRead(BaseModel):
    kind: MembershipKind
    ref: str


class MeResponse(BaseModel):
    user: UserRead
    memberships: list[MembershipRead]
    plant_ids: list[str] | None
    account_ids: list[str] | None


def _tokens(pair: service.TokenPair) -> TokenResponse:
    return TokenResponse(**pair.__dict__)


def _user_read(user: User) -> UserRead:
    return UserRead.model_validate(user, from_attributes=True)


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/login", operation_id="login", exclude_from_auth=True, status_code=200, security=[])
    async def login(
        self, runtime: RuntimeDep, request: Request[Any, Any, Any], data: JSONBody[LoginRequest]
    ) -> TokenResponse:
        address = request.client.host if request.client else "unknown"
        return _tokens(await service.login(runtime, username=data.username, password=data.password, address=address))

    @post("/refresh", operation_id="refresh_token", exclude_from_auth=True, status_code=200, security=[])
    async def refresh(self, runtime: RuntimeDep, data: JSONBody[RefreshRequest]) -> TokenResponse:
        return _tokens(await service.refresh(runtime, refresh_token=data.refresh_token))

    @post("/logout", operation_id="logout", status_code=204)
    async def logout(self, runtime: RuntimeDep, principal: PrincipalDep) -> None:
        await service.logout(runtime, principal)


class MeController(Controller):
    path = "/me"
    tags = ["auth"]

    @get("/", operation_id="get_me")
    async def me(self, session: SessionDep, principal: PrincipalDep) -> MeResponse:
        user = await session.get(User, principal.user_id)
        if user is None:
            raise NotFound("user", principal.user_id)
        memberships = await session.scalars(select(Membership).where(col(Membership.user_id) == user.id))
        return MeResponse(
            user=_user_read(user),
            memberships=[MembershipRead(kind=m.kind, ref=m.ref) for m in memberships],
            plant_ids=None if principal.plant_ids is None else sorted(principal.plant_ids),
            account_ids=None if principal.account_ids is None else sorted(principal.account_ids),
        )


class UserCreate(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    password: str = Field(min_length=8, max_length=256)
    display_name: str = Field(min_length=1, max_length=120)
    email: str | None = Field(default=None, max_length=254)
    role: Role
    memberships: list[MembershipRead] = Field(default_factory=list, max_length=200)


class UserPatch(BaseModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=120)
    email: str | None = Field(default=None, max_length=254)
    password: str | None = Field(default=None, min_length=8, max_length=256)
    is_active: bool | None = None
    locale: str | None = Field(default=None, max_length=8)


class UserAdminController(Controller):
    path = "/admin/users"
    tags = ["admin"]
    guards = [admin_only]

    @get("/", operation_id="admin_list_users")
    async def list_users(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        role: FromQuery[Role | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[UserRead]:
        page = await list_readable(
            session, User, principal, where=equal_filters(User, role=role), cursor=cursor, limit=limit
        )
        return Page[UserRead](items=[_user_read(u) for u in page.items], next_cursor=page.next_cursor)

    @post("/", operation_id="admin_create_user", status_code=201)
    async def create_user(self, runtime: RuntimeDep, principal: PrincipalDep, data: JSONBody[UserCreate]) -> UserRead:
        user = await service.create_user(
            runtime,
            actor=principal.user_id,
            username=data.username,
            password=data.password,
            display_name=data.display_name,
            role=data.role,
            email=data.email,
            memberships=[(m.kind, m.ref) for m in data.memberships],
        )
        return _user_read(user)

    @patch("/{user_id:str}", operation_id="admin_update_user")
    async def update_user(
        self,
        runtime: RuntimeDep,
        principal: PrincipalDep,
        data: JSONBody[UserPatch],
        user_id: IdPath,
    ) -> UserRead:
        user = await service.update_user(runtime, principal, user_id, data.model_dump(exclude_unset=True))
        return _user_read(user)


controllers = [AuthController, MeController, UserAdminController]
