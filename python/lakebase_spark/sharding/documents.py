"""The shard map's document format: JSON (and YAML) files, and the dicts stored in Postgres by
:mod:`.store`. A layer below the in-memory map (:mod:`.shard_map`): it reads documents into a
:class:`MapDocument` (the map's parts) and writes one from them, and never builds a map itself."""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .errors import InvalidShardMapError, MissingDependencyError
from .keys import KeyType, check_key_type, key_from_json, key_to_json
from .model import RangeMapping, Shard, check_fields, check_name

__all__ = [
    "FORMAT",
    "MapDocument",
    "load_map",
    "map_from_document",
    "map_from_json",
    "map_to_document",
    "save_map",
    "shard_from_document",
]


class MapDocument(NamedTuple):
    """What a shard map document holds: a map's parts, checked, for :class:`.RangeShardMap` to build."""

    name: str
    key_type: KeyType
    shards: list[Shard]
    mappings: list[RangeMapping]
    version: int


#: Version of the document :func:`map_to_document` writes; newer documents are refused.
FORMAT = 1
# Ids of mappings a hand-written document leaves out are derived from the range, so loading the same
# file twice gives the same ids (which shards' local maps are checked against).
_ID_NAMESPACE = uuid.UUID("6f0c6a2e-3c55-4f55-9d51-2b1f7a0c4e11")


def map_to_document(parts: MapDocument) -> dict[str, Any]:
    """A map's parts as a JSON-ready document (keys in their lossless JSON form, :func:`key_to_json`)."""
    kt = parts.key_type
    return {
        "format": FORMAT,
        "name": parts.name,
        "key_type": kt,
        "version": parts.version,
        "shards": [s.to_dict() for s in sorted(parts.shards, key=lambda s: s.name)],
        "mappings": [
            {
                "id": m.id,
                "low": key_to_json(kt, m.low),
                "high": None if m.high is None else key_to_json(kt, m.high),
                "shard": m.shard,
                "status": m.status,
            }
            for m in parts.mappings
        ],
    }


def shard_from_document(d: Mapping[str, Any]) -> Shard:
    return Shard.from_dict(d)


def map_from_document(d: Mapping[str, Any]) -> MapDocument:
    """The parts of the map a document describes (see :meth:`RangeShardMap.from_dict`)."""
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
    return MapDocument(name, kt, shards, mappings, d.get("version", 1))


def map_from_json(text: str) -> MapDocument:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidShardMapError(f"shard map JSON is malformed: {e}") from e
    return map_from_document(document)


def load_map(path: str | os.PathLike[str]) -> MapDocument:
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


def save_map(text: str, path: str | os.PathLike[str]) -> None:
    """Write a map's JSON ``text`` (also valid YAML) atomically: readers see the old or the new file."""
    file = Path(path)
    # Not mkstemp: its 0600 mode would end up on the map file; "x" creates with the umask's mode.
    tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("x", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(tmp, file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _as_list(what: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidShardMapError(f"shard map field {what!r} must be a list, got {type(value).__name__}")
    return value


def _as_mapping(what: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidShardMapError(f"each {what} must be a mapping of fields, got {value!r}")
    return value
