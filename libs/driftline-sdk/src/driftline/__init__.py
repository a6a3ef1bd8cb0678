"""Driftline SDK: send a model's predictions and labels to Driftline over HTTP (or straight
to Kafka with the `kafka` extra), and manage models, versions, references and API keys.

    from driftline import Client
    dl = Client("http://127.0.0.1:8101", api_key="dlk_...")
    dl.log(df, model="credit-risk", version="3", prediction="score", labels="defaulted")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import AsyncClient, Client, DriftlineAPIError, IngestReport
from .dataframe import events_from_dataframe
from .sender import BackgroundSender, SendFailed

if TYPE_CHECKING:
    from .kafka import KafkaLogger

__all__ = [
    "AsyncClient",
    "BackgroundSender",
    "Client",
    "DriftlineAPIError",
    "IngestReport",
    "KafkaLogger",
    "SendFailed",
    "__version__",
    "events_from_dataframe",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("driftline")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0+unknown"


__version__ = _version()


def __getattr__(name: str) -> Any:
    if name == "KafkaLogger":  # the `kafka` extra: imported only when asked for
        from .kafka import KafkaLogger

        return KafkaLogger
    raise AttributeError(name)
