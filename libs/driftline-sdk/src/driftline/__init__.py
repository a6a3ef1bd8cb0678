"""Driftline SDK: send a model's predictions and labels to Driftline over HTTP or straight
to Kafka, and manage models, versions, references and API keys.

    from driftline import Client
    dl = Client("http://127.0.0.1:8101", api_key="dlk_...")
    dl.log_predictions("credit-risk", "3", [{"features": {...}, "prediction": 0.7}])
"""

from .client import AsyncClient, Client, DriftlineAPIError
from .dataframe import events_from_dataframe
from .kafka import KafkaLogger

__all__ = ["AsyncClient", "Client", "DriftlineAPIError", "KafkaLogger", "events_from_dataframe"]
