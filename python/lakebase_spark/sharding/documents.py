"""The shard map's document format: JSON (and YAML) files, and the dicts stored in Postgres by
:mod:`.store`. The in-memory model (:mod:`.shard_map`) knows nothing about formats."""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InvalidShardMapError, MissingDependencyError
from .keys import check_key_type, key_from_json, key_to_json
from .model import RangeMapping, Shard, check_name
from .shard_map import RangeShardMap

__all__ = [
    "FORMAT",
    "load_map",
    "map_from_document",
    "map_from_json",
    "map_to_document",
    "save_map",
    "shard_from_document",
]

#: Version of the document :func:`map_to_document` writes; newer documents are refused.
FORMAT = 1
# Ids of mappings a hand-written document leaves out are derived from the range, so loading the same
# file twice gives the same ids (which shards' local maps are checked against).
_ID_NAMESPACE = uuid.UUID("6f0c6a2e-3c55-4f55-9d51-2b1f7a0c4e11")


def map_to_document(shard_map: RangeShardMap) -> dict[str, Any]:
    """The map as a JSON-ready document (keys in their lossless JSON form, :func:`key_to_json`)."""
    kt = shard_map.key_type
    return {
        "format": FORMAT,
        "name": shard_map.name,
        "key_type": kt,
        "version": shard_map.version,
        "shards": [shard_map.shards[n].to_dict() for n in sorted(shard_map.shards)],
        "mappings": [
            {
                "id": m.id,
                "low": key_to_json(kt, m.low),
                "high": None if m.high is None else key_to_json(kt, m.high),
                "shard": m.shard,
                "status": m.status,
            }
            for m in shard_map.mappings
        ],
    }


def shard_from_document(d: Mapping[str, Any]) -> Shard:
    check_fields(
        "shard", d, required={"name"}, optional={"database", "endpoint", "instance", "read_endpoint"}
    )
    return Shard(**dict(d))


def map_from_document(d: Mapping[str, Any]) -> RangeShardMap:
    """The map a document describes (see :meth:`RangeShardMap.from_dict`)."""
    if not isinstance(d, Mapping):
        raise InvalidShardMapError(f"a shard map document must be a mapping, got {type(d).__name__}")
    check_fields(
        "shard map",
        d,
        required={"name", "key_type"},
        optional={"format", "version", "shards", "mappings"},
    )
    fmt = d.get("format", FORMAT)
    if fmt != FORMAT:
        raise InvalidShardMapError(
            f"shard map document format {fmt!r} is not supported (this lakebase-spark reads format "
            f"{FORMAT}); upgrade lakebase-spark"
        )
    name = check_name("shard map name", d["name"])
    kt = check_key_type(d["key_type"])
    shards = [shard_from_document(_as_mapping("shard", s)) for s in _as_list("shards", d.get("shards", []))]
    mappings = []
    for raw in _as_list("mappings", d.get("mappings", [])):
        m = _as_mapping("mapping", raw)
        check_fields("mapping", m, required={"low", "shard"}, optional={"id", "high", "status"})
        low = key_from_json(kt, m["low"])
        high = None if m.get("high") is None else key_from_json(kt, m["high"])
        mapping_id = m.get("id")
        if mapping_id is None:
            high_json = None if high is None else key_to_json(kt, high)
            seed = json.dumps([name, m["shard"], key_to_json(kt, low), high_json])
            mapping_id = str(uuid.uuid5(_ID_NAMESPACE, seed))
        mappings.append(RangeMapping(mapping_id, low, high, m["shard"], m.get("status", "online")))
    return RangeShardMap(name, kt, shards=shards, mappings=mappings, version=d.get("version", 1))


def map_from_json(text: str) -> RangeShardMap:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidShardMapError(f"shard map JSON is malformed: {e}") from e
    return map_from_document(document)


def load_map(path: str | os.PathLike[str]) -> RangeShardMap:
    """Read a map from a ``.json`` file, or ``.yaml``/``.yml`` (needs PyYAML)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".json":
        return map_from_json(file.read_text(encoding="utf-8"))
    if suffix in (".yaml", ".yml"):
        try:
            # Imported by name: PyYAML is optional and its type stubs may be missing.
            yaml = importlib.import_module("yaml")
        except ImportError as e:
            raise MissingDependencyError(
                f"reading the YAML shard map {str(file)!r} needs PyYAML: pip install pyyaml "
                "(or save the map as .json)"
            ) from e
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise InvalidShardMapError(f"shard map YAML {str(file)!r} is malformed: {e}") from e
        return map_from_document(document)
    raise InvalidShardMapError(
        f"cannot tell the format of shard map file {str(file)!r}: name it *.json, *.yaml or *.yml"
    )


def save_map(shard_map: RangeShardMap, path: str | os.PathLike[str]) -> None:
    """Write the map as JSON (also valid YAML), atomically: readers see the old or the new file."""
    file = Path(path)
    # Not mkstemp: its 0600 mode would end up on the map file; "x" creates with the umask's mode.
    tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("x", encoding="utf-8") as out:
            out.write(shard_map.to_json() + "\n")
        os.replace(tmp, file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_fields(what: str, d: Mapping[str, Any], *, required: set[str], optional: set[str]) -> None:
    missing = sorted(required - d.keys())
    unknown = sorted(set(d.keys()) - required - optional)
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(map(str, unknown))}")
        raise InvalidShardMapError(
            f"{what} entry {dict(d)!r}: {'; '.join(problems)} "
            f"(fields: {', '.join(sorted(required | optional))})"
        )


def _as_list(what: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidShardMapError(f"shard map field {what!r} must be a list, got {type(value).__name__}")
    return value


def _as_mapping(what: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidShardMapError(f"each {what} must be a mapping of fields, got {value!r}")
    return value
