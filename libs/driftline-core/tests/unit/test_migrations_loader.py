"""The migration loader refuses badly named or duplicated files before touching a database."""

from __future__ import annotations

import pytest

from driftline_core.db import load_migrations
from driftline_core.errors import ConfigurationError


def test_migrations_load_in_version_order(tmp_path):
    (tmp_path / "0002_b.sql").write_text("B")
    (tmp_path / "0001_a.sql").write_text("A")
    loaded = load_migrations(tmp_path)
    assert [(m.version, m.name, m.sql) for m in loaded] == [(1, "a", "A"), (2, "b", "B")]
    assert loaded[0].checksum != loaded[1].checksum


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql"])
def test_badly_named_migrations_are_refused(tmp_path, name):
    (tmp_path / name).write_text("SELECT 1")
    with pytest.raises(ConfigurationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


def test_duplicate_versions_are_refused(tmp_path):
    (tmp_path / "0001_a.sql").write_text("A")
    (tmp_path / "0001_b.sql").write_text("B")
    with pytest.raises(ConfigurationError, match="duplicate"):
        load_migrations(tmp_path)
