"""The shard map's document format: strict reading, derived ids, YAML."""

from __future__ import annotations

import datetime
import json
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

from lakebase_spark.sharding import (
    InvalidShardMapError,
    KeyTypeError,
    MissingDependencyError,
    RangeShardMap,
)

from ..shard_maps import two_shard_map


def test_from_dict_is_strict_and_derives_missing_ids() -> None:
    document: dict[str, Any] = {
        "name": "hand",
        "key_type": "integer",
        "shards": [{"name": "a", "instance": "inst-a"}],
        "mappings": [{"low": 0, "high": 10, "shard": "a"}, {"low": 10, "shard": "a", "status": "offline"}],
    }
    one, two = RangeShardMap.from_dict(document), RangeShardMap.from_dict(json.loads(json.dumps(document)))
    assert one == two
    assert one.version == 1
    assert [m.high for m in one.mappings] == [10, None]
    assert one.mappings[1].status == "offline"
    uuid.UUID(one.mappings[0].id)
    assert one.mappings[0].id != one.mappings[1].id
    cases: list[tuple[dict[str, Any], str]] = [
        ({**document, "mapings": []}, "unknown mapings"),
        ({k: v for k, v in document.items() if k != "key_type"}, "missing key_type"),
        ({**document, "format": 2}, "upgrade"),
        ({**document, "shards": {"a": {}}}, "must be a list"),
        ({**document, "mappings": [{"low": 0, "shard": "a", "hi": 5}]}, "unknown hi"),
        ({**document, "key_type": "varchar"}, "unknown shard key type"),
    ]
    for broken, words in cases:
        with pytest.raises(InvalidShardMapError, match=words):
            RangeShardMap.from_dict(broken)
    with pytest.raises(InvalidShardMapError, match="malformed"):
        RangeShardMap.from_json("{not json")
    with pytest.raises(KeyTypeError):
        RangeShardMap.from_dict({**document, "mappings": [{"low": "zero", "shard": "a"}]})


YAML_MAP = """
name: events
key_type: date
version: 3
shards:
  - {name: old, endpoint: projects/p/branches/main/endpoints/old}
  - {name: new, instance: events-new, database: events}
mappings:
  - {low: 2020-01-01, high: 2026-01-01, shard: old}
  - {low: "2026-01-01", shard: new}
"""


def test_load_yaml(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "events.yml").write_text(YAML_MAP)
    m = RangeShardMap.load(tmp_path / "events.yml")
    assert (m.name, m.key_type, m.version) == ("events", "date", 3)
    assert m.shard_for_key("2025-06-01").name == "old"
    assert m.shard_for_key(datetime.date(2026, 1, 1)).database == "events"
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(InvalidShardMapError, match="malformed"):
        RangeShardMap.load(tmp_path / "broken.yaml")


def test_yaml_goes_through_the_yaml_module_and_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = two_shard_map()
    m.add_range(0, None, "a")
    (tmp_path / "m.yaml").write_text(m.to_json())  # JSON is YAML
    calls: list[str] = []
    stub = types.ModuleType("yaml")

    def safe_load(text: str) -> Any:
        calls.append(text)
        return json.loads(text)

    stub.safe_load = safe_load  # type: ignore[attr-defined]
    stub.YAMLError = ValueError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "yaml", stub)
    assert RangeShardMap.load(tmp_path / "m.yaml") == m
    assert len(calls) == 1
    monkeypatch.setitem(sys.modules, "yaml", None)  # what an uninstalled module looks like to import
    with pytest.raises(MissingDependencyError, match="pip install pyyaml"):
        RangeShardMap.load(tmp_path / "m.yaml")
    with pytest.raises(InvalidShardMapError, match=r"\*.json, \*.yaml"):
        RangeShardMap.load(tmp_path / "m.toml")
