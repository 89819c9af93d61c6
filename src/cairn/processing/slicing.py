"""The geometry of split groups: a region cut into slices of at most a service's maximum area
(``cairn.processing.groups`` runs one execution per slice).

Features are packed in order into slices of at most the maximum area; a feature still too
large is cut by a grid of equal cells in a Lambert azimuthal equal-area projection centred on
it, so every slice holds at most the maximum area on the ground. This module pulls in pyproj
and shapely (~48 MiB): ``groups`` imports it only when a region has to be cut, so an idle
server does not load them (tests/archive/test_startup_imports.py).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyproj import CRS, Transformer
from shapely import transform
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.validation import make_valid

from cairn.blobs import BlobStore
from cairn.errors import Invalid
from cairn.processing._analysis import analyse_file
from cairn.processing._geo import GEOD, read_features

__all__ = [
    "MAX_SLICES",
    "Feature",
    "SliceFile",
    "area_km2",
    "cut_region",
    "slice_documents",
    "split_region",
]

MAX_SLICES = 256
"""A region needing more slices than this is refused (a typo in a service's maximum, or a
continent sent to a city-sized service), before anything is charged."""

Feature = tuple[BaseGeometry, dict[str, Any]]


def area_km2(geometry: BaseGeometry) -> float:
    """Area on the WGS84 ellipsoid in km²."""
    signed, _ = GEOD.geometry_area_perimeter(geometry)
    return abs(signed) / 1e6


def _grid(geometry: BaseGeometry, maximum_km2: float) -> list[BaseGeometry]:
    """``geometry`` cut by a grid of equal cells of at most ``maximum_km2`` in an equal-area
    projection centred on it; pieces north-west first, row by row.

    The cells are drawn in the projection and brought back to longitude/latitude with their
    edges densified, then cut out of the geometry as it is, so the pieces tile the region
    exactly (no sliver lost or doubled between neighbours)."""
    centre = geometry.centroid
    laea = CRS.from_proj4(
        f"+proj=laea +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 +units=m +no_defs"
    )
    forward = Transformer.from_crs("EPSG:4326", laea, always_xy=True).transform
    back = Transformer.from_crs(laea, "EPSG:4326", always_xy=True).transform
    region = make_valid(geometry)
    outline = transform(region.segmentize(0.01), forward, interleaved=False)
    west, south, east, north = outline.bounds
    # A little under the maximum: a cell's densified edges are not quite geodesics.
    side = math.sqrt(maximum_km2 * 1e6) * 0.99
    columns = max(1, math.ceil((east - west) / side))
    rows = max(1, math.ceil((north - south) / side))
    width, height = (east - west) / columns, (north - south) / rows
    step = min(width, height) / 32
    pieces = []
    for row in range(rows):
        top = north - row * height
        for column in range(columns):
            left = west + column * width
            cell = box(left, top - height, left + width, top).segmentize(step)
            piece = region.intersection(transform(cell, back, interleaved=False))
            polygonal = _polygonal(piece)
            if polygonal is not None:
                pieces.append(polygonal)
    return pieces


def _polygonal(geometry: BaseGeometry) -> BaseGeometry | None:
    """The areal part of an intersection (edges touching a cell give lines and points)."""
    if geometry.is_empty:
        return None
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry if geometry.area > 0 else None
    if geometry.geom_type == "GeometryCollection":
        parts = [g for g in geometry.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        merged = unary_union(parts) if parts else None
        return merged if merged is not None and not merged.is_empty else None
    return None


def split_region(features: Sequence[Feature], maximum_km2: float) -> list[list[Feature]]:
    """The slices of a region: one slice (the features as they are) when the whole region is
    at most ``maximum_km2``; else features packed in order into slices of at most the
    maximum, a feature larger than it cut by an equal-area grid.

    Raises:
        Invalid: the maximum is not a positive number, or the region needs more than
            ``MAX_SLICES`` slices.
    """
    if not maximum_km2 > 0 or math.isinf(maximum_km2):
        raise Invalid("A service's maximum region size must be a positive number of km².")
    areas = [area_km2(g) for g, _ in features]
    if sum(areas) <= maximum_km2:
        return [list(features)]
    # An upper bound on the slices, to refuse before cutting anything huge.
    bound = sum(max(1, math.ceil(a / maximum_km2)) for a in areas)
    if bound > 4 * MAX_SLICES:
        raise Invalid(
            f"The region ({sum(areas):,.0f} km²) is too large for this service: it would need "
            f"about {bound} slices of at most {maximum_km2:,.0f} km²; at most {MAX_SLICES} "
            "are allowed."
        )
    slices: list[list[Feature]] = []
    current: list[Feature] = []
    current_area = 0.0
    for (geometry, properties), area in zip(features, areas, strict=True):
        if area > maximum_km2:
            if current:
                slices.append(current)
                current, current_area = [], 0.0
            slices.extend([[(piece, properties)] for piece in _grid(geometry, maximum_km2)])
            continue
        if current and current_area + area > maximum_km2:
            slices.append(current)
            current, current_area = [], 0.0
        current.append((geometry, properties))
        current_area += area
    if current:
        slices.append(current)
    if len(slices) > MAX_SLICES:
        raise Invalid(
            f"The region ({sum(areas):,.0f} km²) would need {len(slices)} slices of at most "
            f"{maximum_km2:,.0f} km²; at most {MAX_SLICES} are allowed."
        )
    return slices


def slice_documents(slices: Sequence[Sequence[Feature]]) -> list[bytes]:
    """Each slice as a GeoJSON FeatureCollection (WGS84), its features marked with the slice."""
    documents = []
    for index, features in enumerate(slices):
        document = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": json.loads(json.dumps(geometry.__geo_interface__)),
                    "properties": {
                        **properties,
                        "cairn_slice": index + 1,
                        "cairn_slices": len(slices),
                    },
                }
                for geometry, properties in features
            ],
        }
        documents.append(json.dumps(document).encode())
    return documents


@dataclass(frozen=True)
class SliceFile:
    """One slice's region as stored: a GeoJSON blob and its analysis."""

    sha256: str
    size: int
    analysis: dict[str, Any]


def cut_region(blobs: BlobStore, source: Sequence[str], maximum_km2: float) -> list[SliceFile]:
    """Read the region's GeoJSON blobs ``source``, cut it (``split_region``) and store each
    slice as a blob with its analysis; an empty list when the region fits in one slice."""
    features: list[Feature] = []
    with tempfile.TemporaryDirectory(prefix="region-") as folder:
        for index, sha256 in enumerate(source):
            local = Path(folder) / f"{index}.geojson"
            with blobs.open(sha256) as stream:
                local.write_bytes(stream.read())
            features.extend(read_features(local))
        slices = split_region(features, maximum_km2)
        if len(slices) == 1:
            return []
        stored = []
        for index, document in enumerate(slice_documents(slices)):
            local = Path(folder) / f"slice_{index + 1}.geojson"
            local.write_bytes(document)
            analysis = analyse_file(local, "GeoJSON", local.name)
            ref = blobs.put(document)
            stored.append(SliceFile(ref.sha256, ref.size, analysis))
    return stored
