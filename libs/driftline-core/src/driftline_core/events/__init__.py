"""Event contracts: the envelope and every topic's versioned pydantic models."""

from .actuals import ActualEvent
from .alerts import AlertEvent
from .audit import Actor, AuditRecord, Resource
from .catalogue import TOPICS, TopicSpec, by_name, model_for
from .dlq import DeadLetter
from .drift import DriftResult, FeatureDrift, MultivariateDrift
from .envelope import Envelope, decode, encode, utcnow
from .performance import PerformanceResult
from .predictions import PredictionEvent
from .quality import FeatureQuality, QualityResult
from .registry import RegistryChange
from .remediation import RetrainRequested
from .reports import ReportEvent
from .revocations import Revocation
from .windows import WindowSpan

__all__ = [
    "TOPICS",
    "Actor",
    "ActualEvent",
    "AlertEvent",
    "AuditRecord",
    "DeadLetter",
    "DriftResult",
    "Envelope",
    "FeatureDrift",
    "FeatureQuality",
    "MultivariateDrift",
    "PerformanceResult",
    "PredictionEvent",
    "QualityResult",
    "RegistryChange",
    "ReportEvent",
    "Resource",
    "RetrainRequested",
    "Revocation",
    "TopicSpec",
    "WindowSpan",
    "by_name",
    "decode",
    "encode",
    "model_for",
    "utcnow",
]
