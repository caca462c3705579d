"""`/compliance`: erasure of a contact's personal data, and the audit chain's verification and export."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import JSONBody, QueryParameter
from litestar.response import Stream
from pydantic import BaseModel, Field, StringConstraints

from loopline.compliance import evidence
from loopline.compliance.erasure import ERASERS, erase_contact
from loopline.core.access import Role
from loopline.core.api import IdPath, PrincipalDep, RuntimeDep, SessionDep
from loopline.core.audit import chain_head, verify_chain
from loopline.core.auth import admin_only, require_roles
from loopline.customer.models import Contact

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
HeadHash = Annotated[
    str | None,
    QueryParameter(pattern=r"^[0-9a-f]{64}$", description="A head hash recorded earlier (catches deleted events)."),
]
HEAD_SEQ, HEAD_HASH = "Loopline-Audit-Head-Seq", "Loopline-Audit-Head-Hash"
# Seqs are 64-bit integers in the database.
AfterSeq = Annotated[
    int, QueryParameter(ge=0, le=2**63 - 1, description="Export the events after this seq (0: from the start).")
]


class ErasureRequest(BaseModel):
    reason: Reason = Field(
        description="Why, as recorded on the audit chain: a request reference, never personal data.",
        examples=["Art. 17 request, ticket DSR-2024-031"],
    )


class ContactErased(BaseModel):
    contact: Contact = Field(description="The contact as it is now: pseudonymized, consents withdrawn.")
    portal_user_ids: list[str] = Field(
        description="The person's portal logins (customer users of the account with the contact's e-mail), "
        "pseudonymized and closed with it."
    )


class ChainReportRead(BaseModel):
    ok: bool
    events: int = Field(description="Events verified, in seq order from the first.")
    head_hash: str = Field(description="The hash of the last event verified: anchor it elsewhere.")
    first_broken_seq: int | None
    reason: str | None


class ComplianceController(Controller):
    path = "/compliance"
    tags = ["compliance"]

    @post(
        "/contacts/{contact_id:str}/erasure",
        operation_id="compliance_erase_contact",
        status_code=200,
        guards=[require_roles(*ERASERS)],
        summary="Erase a contact's personal data (GDPR Art. 17)",
        description=(
            "Name, e-mail and phone become a pseudonym, `pseudonymized_at` is set and every consent is "
            "withdrawn; the person's portal logins are pseudonymized and closed; older copies in the change "
            "log are overwritten; the audit chain, which holds only commitments to personal values, loses "
            "the key to them. Cases, nonconformances and the chain stay intact. For administrators, and "
            "supervisors for the accounts they read. A second erasure answers 409 `contact_already_erased` "
            "and changes nothing."
        ),
    )
    async def erase(
        self, runtime: RuntimeDep, principal: PrincipalDep, contact_id: IdPath, data: JSONBody[ErasureRequest]
    ) -> ContactErased:
        erased = await erase_contact(runtime, principal, contact_id, reason=data.reason)
        return ContactErased(contact=erased.contact, portal_user_ids=erased.portal_user_ids)

    # The report names no record, so supervisors may run it; the export spans every record.
    @get(
        "/audit/verify",
        operation_id="compliance_verify_audit_chain",
        guards=[require_roles(Role.ADMIN, Role.SUPERVISOR)],
        summary="Verify the audit chain",
        description="Walks the whole chain; a broken chain is reported (`ok: false`), not an error.",
    )
    async def verify(self, session: SessionDep, expected_head: HeadHash = None) -> ChainReportRead:
        report = await verify_chain(session, expected_head=expected_head)
        return ChainReportRead(
            ok=report.ok,
            events=report.events,
            head_hash=report.head_hash,
            first_broken_seq=report.first_broken_seq,
            reason=report.reason,
        )

    @get(
        "/audit/export",
        operation_id="compliance_export_audit_chain",
        guards=[admin_only],
        summary="Export the audit chain as evidence",
        description=(
            "JSON lines, one event each in seq order, streamed; admin only, since the chain spans every "
            "plant and account. Each line is the event's canonical JSON (sorted keys, no whitespace, UTF-8) "
            "with `prev_hash` and `hash`: SHA-256 over `prev_hash` followed by the canonical JSON of the other "
            "fields gives `hash`, and each `prev_hash` is the previous line's `hash` (64 zeros before seq 1). "
            "The headers name the newest event exported; later events are left for the next export."
        ),
        media_type=evidence.MEDIA_TYPE,
        response_headers=[
            ResponseHeader(name=HEAD_SEQ, description="The seq of the newest event exported.", documentation_only=True),
            ResponseHeader(name=HEAD_HASH, description="The hash of that event.", documentation_only=True),
        ],
    )
    async def export(self, runtime: RuntimeDep, session: SessionDep, after_seq: AfterSeq = 0) -> Stream:
        head_seq, head_hash = await chain_head(session)
        return Stream(
            evidence.export_lines(runtime.db, after_seq=after_seq, up_to=head_seq),
            media_type=evidence.MEDIA_TYPE,
            headers={HEAD_SEQ: str(head_seq), HEAD_HASH: head_hash},
        )


controllers = [ComplianceController]
