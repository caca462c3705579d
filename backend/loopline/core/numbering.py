"""Human numbers for records people talk about: NC-0142, CS-1001, ADV-031, RMA-7781, CAPA-0077.

Ids stay UUIDs (devices make them offline); numbers are given by the server, in the
transaction that creates the record, from one counter per prefix. The counter moves with
a single `UPDATE … RETURNING`, so two transactions never get the same number; a rolled
back transaction gives its number back.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from loopline.core.db import table_of

# Digits per prefix, as people have known them.
WIDTHS = {"NC": 4, "CS": 4, "ADV": 3, "RMA": 4, "CAPA": 4, "QW": 4}


class NumberSequence(SQLModel, table=True):
    __tablename__ = "number_sequence"

    prefix: str = Field(primary_key=True, max_length=16)
    last_value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


async def next_number(session: AsyncSession, prefix: str) -> str:
    [number] = await next_numbers(session, prefix, 1)
    return number


async def next_numbers(session: AsyncSession, prefix: str, count: int) -> list[str]:
    """`count` consecutive numbers of a prefix, taken with one statement."""
    if count < 1:
        return []
    sequences = table_of(NumberSequence)
    last = await session.scalar(
        update(sequences)
        .where(sequences.c.prefix == prefix)
        .values(last_value=sequences.c.last_value + count)
        .returning(sequences.c.last_value)
    )
    if last is None:
        last = count
        await session.execute(insert(sequences).values(prefix=prefix, last_value=last))
    width = WIDTHS.get(prefix, 4)
    return [f"{prefix}-{value:0{width}d}" for value in range(last - count + 1, last + 1)]


async def continue_numbering(session: AsyncSession, prefix: str, after: int) -> None:
    """Start a prefix's numbers after `after` (a site moving over from another system)."""
    sequences = table_of(NumberSequence)
    moved = await session.execute(update(sequences).where(sequences.c.prefix == prefix).values(last_value=after))
    if not moved.rowcount:  # type: ignore[attr-defined]
        await session.execute(insert(sequences).values(prefix=prefix, last_value=after))
