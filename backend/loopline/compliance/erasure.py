"""Erasure of a customer contact (GDPR Art. 17) inside retained quality records.

The cases, nonconformances and advisories that name a contact are quality records the
manufacturer must keep (ISO 9001 §7.5.3, §8.7), so the contact is pseudonymized rather
than deleted: its id stays and every record still points at it. In one transaction the
erasure

* replaces name, e-mail and phone by a pseudonym, withdraws every consent, stamps
  `pseudonymized_at` and wipes the row's personal salt, which leaves the audit chain's
  commitments to the old values unlinkable (`core/audit.py`);
* closes the same person's portal logins (customer users of the contact's account with
  the contact's e-mail address) and pseudonymizes them the same way;
* takes the contact off advisories not sent yet, since its consent is withdrawn;
* overwrites the data of every older change-log row of those entities with the erased
  state. The change log keeps no history (the audit chain does), and the put this
  transaction appends supersedes those rows for every reader anyway. They are rewritten
  rather than deleted because the next seq follows the newest row: deleting that row
  would hand its seq out again, to a change that devices past it never receive (rows in
  a scope the entity has left are deleted: a tombstone follows each of them);
* records `contact.erased` on the chain and as a domain event, so that webhook receivers
  erase their copies too.

Free text that people wrote about the person (a case description, a message) is not
recognised as personal data here; it is redacted by editing that record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.core.access import Principal, Role
from loopline.core.audit import wipe_personal_salt
from loopline.core.canonical import to_jsonable
from loopline.core.changelog import ChangeLog
from loopline.core.entity import Entity
from loopline.core.errors import Conflict, Forbidden
from loopline.core.events import emit
from loopline.core.pagination import get_readable
from loopline.core.runtime import Runtime
from loopline.customer.models import AdvisoryRecipient, Contact, RecipientState
from loopline.people.models import Membership, MembershipKind, User
from loopline.people.service import end_sessions

# Supervisors may erase within the accounts they read: they own the quality records the
# contact stays part of. Service reps handle the customer but do not decide on erasure.
ERASERS = frozenset({Role.ADMIN, Role.SUPERVISOR})


@dataclass(frozen=True)
class Erasure:
    contact: Contact
    portal_user_ids: list[str]


async def erase_contact(runtime: Runtime, principal: Principal, contact_id: str, *, reason: str) -> Erasure:
    """Erase the contact's personal data as `principal`; `reason` goes on the audit chain.

    Refused with `forbidden` for other roles, `not_found` for a contact the principal
    cannot read, and `contact_already_erased` (409) the second time: nothing changes then.
    """
    if principal.role not in ERASERS:
        raise Forbidden("Erasing personal data needs an administrator or a supervisor.")
    uow = runtime.unit_of_work(actor=principal.user_id, command="contact.erase")
    async with uow as session:
        contact = await get_readable(session, Contact, principal, contact_id)
        if contact.pseudonymized_at is not None:
            raise Conflict(
                "contact_already_erased",
                "This contact's personal data was erased already.",
                {"contact_id": contact.id, "pseudonymized_at": to_jsonable(contact.pseudonymized_at)},
            )
        now = runtime.clock.now()
        logins = await _portal_logins(session, contact)
        _pseudonymize_contact(contact, now)
        for user in logins:
            _close_login(user)
            await end_sessions(runtime, uow, user_id=user.id)
        withdrawn = await _withdraw_from_unsent_advisories(session, contact.id)
        # Versions and times are set at flush: the rewritten log rows carry the final state.
        await session.flush()
        scrubbed = [await _scrub_change_log(session, entity) for entity in (contact, *logins)]
        uow.audit(
            entity="contact",
            entity_id=contact.id,
            action="contact.erased",
            diff={
                "requested_by": principal.user_id,
                "reason": reason,
                "portal_user_ids": [user.id for user in logins],
                "advisory_recipient_ids": withdrawn,
                "change_log_rows_scrubbed": sum(scrubbed),
            },
        )
        emit(
            session,
            "contact.erased",
            subject_type="contact",
            subject_id=contact.id,
            actor=principal.user_id,
            at=now,
            payload={"account_id": contact.account_id},
        )
    return Erasure(contact, [user.id for user in logins])


def _pseudonym(kind: str, entity_id: str) -> str:
    # The id's last characters are its random part (UUIDv7 begins with the time).
    return f"Erased {kind} {entity_id[-8:]}"


def _pseudonymize_contact(contact: Contact, now: datetime) -> None:
    contact.name = _pseudonym("contact", contact.id)
    contact.email = None
    contact.phone = None
    withdrawn = {purpose: False for purpose, given in contact.consents.items() if isinstance(given, bool)}
    contact.consents = {"service_notices": False, **withdrawn, "at": to_jsonable(now), "source": "erasure"}
    contact.pseudonymized_at = now
    wipe_personal_salt(contact)


async def _portal_logins(session: AsyncSession, contact: Contact) -> list[User]:
    """The contact's own logins: customer users of its account with its e-mail address."""
    if not contact.email:
        return []
    members = select(col(Membership.user_id)).where(
        col(Membership.kind) == MembershipKind.ACCOUNT, col(Membership.ref) == contact.account_id
    )
    query = select(User).where(
        col(User.role) == Role.CUSTOMER,
        func.lower(col(User.email)) == contact.email.lower(),
        col(User.id).in_(members),
    )
    return list(await session.scalars(query))


def _close_login(user: User) -> None:
    user.username = f"erased-{user.id}"
    user.display_name = _pseudonym("user", user.id)
    user.email = None
    user.is_active = False
    wipe_personal_salt(user)


async def _withdraw_from_unsent_advisories(session: AsyncSession, contact_id: str) -> list[str]:
    """Drop the contact from advisories not sent yet; the ids of the recipients dropped."""
    unsent = list(
        await session.scalars(
            select(AdvisoryRecipient).where(
                col(AdvisoryRecipient.contact_id) == contact_id, col(AdvisoryRecipient.state) == RecipientState.PENDING
            )
        )
    )
    for recipient in unsent:
        await session.delete(recipient)
    return [recipient.id for recipient in unsent]


async def _scrub_change_log(session: AsyncSession, entity: Entity) -> int:
    """Give the change-log puts of `entity` its current data; the number of rows rewritten or dropped.

    Puts in a scope the entity has left are dropped instead: a delete follows them there
    (so none is the newest row), and the current data is no business of that scope.
    """
    puts = (
        col(ChangeLog.entity) == entity.__entity__,
        col(ChangeLog.entity_id) == entity.id,
        col(ChangeLog.op) == "put",
    )
    scopes = entity.scope_keys()
    left = await session.execute(delete(ChangeLog).where(*puts, col(ChangeLog.scope_key).not_in(scopes)))
    kept = await session.execute(
        update(ChangeLog).where(*puts, col(ChangeLog.scope_key).in_(scopes)).values(data=entity.public_data())
    )
    return sum(cast(CursorResult[Any], result).rowcount for result in (left, kept))
