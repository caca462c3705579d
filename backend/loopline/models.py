"""Every table, imported in one place so that metadata (and Alembic) sees the whole schema."""

from sqlmodel import SQLModel

from loopline.catalog import models as catalog
from loopline.core.audit import AuditEvent
from loopline.core.changelog import ChangeLog
from loopline.core.events import DomainEvent
from loopline.core.numbering import NumberSequence
from loopline.customer import models as customer
from loopline.integration import models as integration
from loopline.media import models as media
from loopline.people import models as people
from loopline.quality import models as quality
from loopline.realtime import models as realtime
from loopline.syncing import models as syncing
from loopline.threads import models as threads

metadata = SQLModel.metadata

__all__ = [
    "AuditEvent",
    "ChangeLog",
    "DomainEvent",
    "NumberSequence",
    "catalog",
    "customer",
    "integration",
    "media",
    "metadata",
    "people",
    "quality",
    "realtime",
    "syncing",
    "threads",
]
