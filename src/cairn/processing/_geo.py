"""Geometry helpers shared by analysis and the built-in services (shapely + pyproj)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError
from shapely import transform
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
    source = _legacy_crs(document)
    if source is not None:
        to_wgs84 = Transformer.from_crs(source, "EPSG:4326", always_xy=True).transform
        features = [(transform(g, to_wgs84, interleaved=False), p) for g, p in features]
    return features


_WGS84_NAMES = {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326"}


def _legacy_crs(document: dict[str, Any]) -> CRS | None:
    """The CRS named by a GeoJSON 2008 ``crs`` member (the SDK's Lake District file is in
    British National Grid), or None for WGS84 longitude/latitude (RFC 7946's only CRS)."""
    member = document.get("crs")
    if member is None:
        return None
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not isinstance(name, str):
        raise Invalid("Not valid GeoJSON: its 'crs' member names no CRS.")
    if name in _WGS84_NAMES:
        return None
    try:
        crs = CRS.from_user_input(name)
    except CRSError as exc:
        raise Invalid(f"Not valid GeoJSON: unknown CRS {name[:100]!r}.") from exc
    return None if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True) else crs


def union_bounds(geometries: list[BaseGeometry]) -> list[float]:
    """``[west, south, east, north]`` of all geometries."""
    boxes = [g.bounds for g in geometries]
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
