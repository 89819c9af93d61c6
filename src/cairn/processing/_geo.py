"""Geometry helpers shared by analysis and the built-in services (shapely + pyproj)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from cairn.errors import Invalid

__all__ = ["GEOD", "read_features", "union_bounds"]

GEOD = Geod(ellps="WGS84")


def read_features(path: Path) -> list[tuple[BaseGeometry, dict[str, Any]]]:
    """The features of a GeoJSON file as (geometry, properties); ``Invalid`` says why not."""
    try:
        document = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"Not valid GeoJSON: {exc}.") from exc
    if not isinstance(document, dict):
        raise Invalid("Not valid GeoJSON: the document is not an object.")
    kind = document.get("type")
    if kind == "FeatureCollection":
        raw = document.get("features")
        if not isinstance(raw, list):
            raise Invalid("Not valid GeoJSON: a FeatureCollection needs a list of features.")
    elif kind == "Feature":
        raw = [document]
    elif isinstance(kind, str):
        raw = [{"type": "Feature", "geometry": document, "properties": {}}]
    else:
        raise Invalid("Not valid GeoJSON: no 'type'.")
    features = []
    for index, feature in enumerate(raw):
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise Invalid(f"Not valid GeoJSON: feature {index} has no geometry.")
        try:
            geometry = shape(feature["geometry"])
        except Exception as exc:  # shapely raises several kinds for bad coordinates
            raise Invalid(f"Not valid GeoJSON: feature {index}: {exc}.") from exc
        if geometry.is_empty:
            raise Invalid(f"Not valid GeoJSON: feature {index} is empty.")
        properties = feature.get("properties")
        features.append((geometry, properties if isinstance(properties, dict) else {}))
    if not features:
        raise Invalid("Not valid GeoJSON: no features.")
    return features


def union_bounds(geometries: list[BaseGeometry]) -> list[float]:
    """``[west, south, east, north]`` of all geometries."""
    boxes = [g.bounds for g in geometries]
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
