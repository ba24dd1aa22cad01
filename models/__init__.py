"""Flare's tables and shared domain types. Imports nothing of ours but itself."""
from models.domain import (
    DeliveryReceipt,
    GeoPoint,
    LocationMention,
    OutboundRequest,
    RawPost,
    TriageOutput,
)
from models.enums import (
    Category,
    DeliveryStatus,
    Disposition,
    EventKind,
    IncidentStatus,
    Lane,
    MessageKind,
    MessagePurpose,
    Platform,
    Role,
    TriageState,
    Urgency,
)
from models.cad import CadDelivery
from models.media import PostMedia, SharedItem, ShareLink
from models.seams import Notifier, Replier, Source
from models.tables import (
    AuditEntry,
    ConnectorCheckpoint,
    EvidenceTombstone,
    Incident,
    IncidentEvent,
    IncidentPost,
    LoginSession,
    OutboundMessage,
    Post,
    TriageRecord,
    User,
)
from models.types import utcnow

__all__ = [
    "AuditEntry", "CadDelivery", "Category", "ConnectorCheckpoint", "DeliveryReceipt", "DeliveryStatus",
    "EvidenceTombstone",     "Disposition", "EventKind", "GeoPoint", "Incident", "IncidentEvent", "IncidentPost",
    "IncidentStatus", "Lane", "LoginSession", "LocationMention", "MessageKind", "MessagePurpose", "Notifier",
    "OutboundMessage", "OutboundRequest", "Platform", "Post", "PostMedia", "RawPost", "Replier", "Role",
    "SharedItem", "ShareLink", "Source", "TriageOutput", "TriageRecord", "TriageState", "Urgency", "User", "utcnow",
]
