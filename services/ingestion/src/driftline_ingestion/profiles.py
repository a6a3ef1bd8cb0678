"""Reference profiles from uploaded data (CSV, Parquet, JSON lines) or from a time range of
served predictions. Data is read in record batches, so memory stays bounded whatever the
file size; the profile itself is computed by driftline-stats."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftline_core.errors import InvalidEventError
from driftline_core.events import predictions as predictions_topic
from driftline_core.events.batch import decode_batch, is_batch
from driftline_core.events.features import FeatureSchema
from driftline_core.events.registry import class_label
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import KafkaSettings
from driftline_stats import ProfileBuilder
from driftline_stats.profile import PREDICTION

__all__ = [
    "MAX_CLASSES",
    "Format",
    "detect_format",
    "learn_classes",
    "profile_file",
    "profile_served_events",
    "spool",
]

Format = Literal["csv", "parquet", "jsonl"]
BATCH_ROWS = 50_000
MAX_CLASSES = 1000


def detect_format(content_type: str, filename: str | None) -> Format:
    ctype = content_type.split(";")[0].strip().lower()
    name = (filename or "").lower()
    if ctype in ("text/csv", "application/csv") or name.endswith(".csv"):
        return "csv"
    if "parquet" in ctype or name.endswith(".parquet"):
        return "parquet"
    if ctype in ("application/x-ndjson", "application/jsonl") or name.endswith(
        (".jsonl", ".ndjson")
    ):
        return "jsonl"
    raise InvalidEventError(
        f"cannot tell the format of the upload ({content_type!r}): send text/csv, "
        "application/vnd.apache.parquet or application/x-ndjson, or ?filename=data.csv"
    )


async def spool(chunks: AsyncIterator[bytes], limit: int, directory: str | None = None) -> Path:
    """Write the upload to a temporary file without holding it in memory."""
    f = tempfile.NamedTemporaryFile(prefix="driftline-ref-", dir=directory, delete=False)  # noqa: SIM115
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise InvalidEventError(f"the upload exceeds {limit} bytes")
            f.write(chunk)  # small chunks to the page cache; not worth a thread hop
    except BaseException:
        f.close()
        Path(f.name).unlink(missing_ok=True)  # noqa: ASYNC240 - error path, one unlink
        raise
    f.close()
    return Path(f.name)


def _kinds(schema: FeatureSchema, task: str | None = None) -> dict[str, Any]:
    """Profiled columns: the non-sensitive features, and the prediction (as `PREDICTION`)
    when the task says how to read it."""
    kinds: dict[str, Any] = {f.name: f.kind for f in schema.features if not f.sensitive}
    if task == "regression":
        kinds[PREDICTION] = "numeric"
    elif task == "classification":
        kinds[PREDICTION] = "categorical"
    return kinds


def _columns(batch: pa.RecordBatch, kinds: dict[str, Any], prediction: str) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    names = set(batch.schema.names)
    for name, kind in kinds.items():
        source = prediction if name == PREDICTION else name
        if source not in names:
            continue
        col = batch.column(source)
        if kind == "numeric":
            cols[name] = pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        else:
            cols[name] = np.asarray(col.to_pylist(), dtype=object)
    return cols


def _batches(
    path: Path, fmt: Format, kinds: dict[str, Any], prediction: str
) -> Iterator[dict[str, Any]]:
    sources = [prediction if c == PREDICTION else c for c in kinds]
    if fmt == "parquet":
        pf = pq.ParquetFile(path)
        present = [c for c in sources if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=present):
            yield _columns(batch, kinds, prediction)
    elif fmt == "csv":
        types = {
            (prediction if n == PREDICTION else n): pa.string()
            for n, k in kinds.items()
            if k in ("categorical", "text")
        }
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=8 << 20),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
        for batch in reader:
            yield _columns(batch, kinds, prediction)
    else:
        rows: list[dict[str, Any]] = []
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    raise InvalidEventError(f"line {n} is not JSON: {e}") from e
                if not isinstance(row, dict):
                    row = {}
                feats = dict(row.get("features", row))
                if prediction in row:
                    feats[PREDICTION] = row[prediction]
                rows.append(feats)
                if len(rows) == BATCH_ROWS:
                    yield _row_columns(rows, kinds)
                    rows = []
        if rows:
            yield _row_columns(rows, kinds)


def _row_columns(rows: list[dict[str, Any]], kinds: dict[str, Any]) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for name, kind in kinds.items():
        values = [r.get(name) for r in rows]
        if kind == "numeric":
            cols[name] = np.asarray([np.nan if v is None else v for v in values], dtype=float)
        else:
            cols[name] = values
    return cols


def profile_file(
    path: Path,
    fmt: Format,
    schema: FeatureSchema,
    task: str | None = None,
    prediction_column: str = "prediction",
) -> dict[str, Any]:
    """Profile an uploaded reference. The model's output, when the file has it, is read
    from `prediction_column` (JSON lines: that key of each row)."""
    kinds = _kinds(schema, task)
    builder = ProfileBuilder(kinds)
    try:
        for cols in _batches(path, fmt, kinds, prediction_column):
            builder.update(cols)
    except (pa.ArrowInvalid, ValueError, TypeError) as e:
        raise InvalidEventError(f"the {fmt} upload could not be read: {e}") from e
    profile = builder.finish()
    if profile["rows"] == 0:
        raise InvalidEventError("the upload has no rows")
    return profile


def learn_classes(path: Path, fmt: Format, label_column: str) -> list[str] | None:
    """The distinct labels of a reference's label column, spelt as classes (sorted), or
    None if the file has no such column. Read in batches like the profile."""
    seen: set[str] = set()

    def add(values: list[Any]) -> None:
        seen.update(class_label(v) for v in values if v is not None)
        if len(seen) > MAX_CLASSES:
            raise InvalidEventError(
                f"label column {label_column!r} has more than {MAX_CLASSES} distinct values: "
                "is it a classifier's label?"
            )

    found = False
    try:
        if fmt == "parquet":
            pf = pq.ParquetFile(path)
            if label_column not in pf.schema_arrow.names:
                return None
            found = True
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=[label_column]):
                add(batch.column(0).to_pylist())
        elif fmt == "csv":
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(include_columns=[label_column]),
            )
            for batch in reader:
                found = True
                add(batch.column(0).to_pylist())
        else:
            with open(path, "rb") as f:
                for line in f:
                    if not line.strip():
                        continue
                    row = orjson.loads(line)
                    if isinstance(row, dict) and label_column in row:
                        found = True
                        add([row[label_column]])
    except KeyError:
        return None
    except (pa.ArrowInvalid, orjson.JSONDecodeError) as e:
        if "include_columns" in str(e) or label_column in str(e):
            return None  # no such column
        raise InvalidEventError(f"the {fmt} upload could not be read: {e}") from e
    return sorted(seen) if found and seen else None


async def profile_served_events(
    settings: KafkaSettings,
    tenant_id: str,
    model_id: str,
    start: datetime,
    end: datetime,
    schema: FeatureSchema,
    limit: int = 1_000_000,
    task: str | None = None,
) -> dict[str, Any]:
    """Profile what the model served between start and end (features and predictions),
    read back from Kafka."""
    kinds = _kinds(schema, task)
    builder = ProfileBuilder(kinds)
    topic = predictions_topic.TOPIC
    consumer = AIOKafkaConsumer(
        **client_kwargs(settings), group_id=None, enable_auto_commit=False, max_poll_records=5000
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        parts = [
            TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or [])
        ]
        consumer.assign(parts)
        starts = await consumer.offsets_for_times(
            {tp: int(start.timestamp() * 1000) for tp in parts}
        )
        ends = await consumer.end_offsets(parts)
        todo = {}
        for tp in parts:
            found = starts.get(tp)
            if found is not None and found.offset < ends[tp]:
                consumer.seek(tp, found.offset)
                todo[tp] = ends[tp]
        end_ms, prefix, rows, seen = int(end.timestamp() * 1000), f"{tenant_id}:{model_id}", [], 0
        while todo and seen < limit:
            for tp, records in (await consumer.getmany(*todo, timeout_ms=1000)).items():
                for r in records:
                    if r.timestamp > end_ms or r.offset + 1 >= todo.get(tp, 0):
                        todo.pop(tp, None)
                    if r.timestamp <= end_ms and r.key and r.key.decode() == prefix:
                        if is_batch(r.value, r.headers):  # a columnar batch record
                            evs = decode_batch(r.value).events()
                        else:
                            evs = [orjson.loads(r.value)]
                        for ev in evs:
                            rows.append({**ev["features"], PREDICTION: ev.get("prediction")})
                        seen += len(evs)
            if len(rows) >= BATCH_ROWS or (not todo and rows):
                builder.update(_row_columns(rows, kinds))
                rows = []
        if rows:
            builder.update(_row_columns(rows, kinds))
    finally:
        await consumer.stop()
    profile = builder.finish()
    if profile["rows"] == 0:
        raise InvalidEventError(f"no events of model {model_id!r} were served in that range")
    return profile
