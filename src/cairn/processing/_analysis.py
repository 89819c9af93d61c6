"""Data file analysis: check a file is what its type says, and describe it as the SDK shows it.

Runs after an upload completes (in a background thread of the server) and on every output.
An ``Invalid`` from here becomes the file's ``error``; the item is kept, marked failed.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn.errors import Invalid
from cairn.processing._geo import GEOD, read_features, union_bounds

__all__ = ["analyse_file"]

VECTOR_TYPES = ("GeoJSON",)
RASTER_TYPES = ("GeoTIFF", "DEM", "JPEG2000")


PREVIEW_SIZE = 512  # pixels on the longer side


def analyse_file(
    path: Path, file_type: str, file_name: str, store: Callable[[Path], str] | None = None
) -> dict[str, Any]:
    """What the SDK shows of a file: bounds, CRS, counts, selectors and a STAC item; with
    ``store`` (which keeps a file and answers its blob hash) also a PNG preview of a raster or
    vector as ``preview_sha256``."""
    found: dict[str, Any]
    if file_type in VECTOR_TYPES:
        found = _vector(path)
    elif file_type in RASTER_TYPES:
        found = _raster(path)
    elif file_type == "ESRI Shapefile":
        found = _shapefile(path)
    elif file_type in ("ZIP", "KMZ"):
        _zip(path)
        found = {}
    else:
        found = {}
    found["stac_item"] = _stac_item(file_name, found)
    if store is not None and found.get("geospatial"):
        png = path.with_name(f"{path.name}.preview.png")
        try:
            with warnings.catch_warnings():
                # rasterio 1.4 multiplies affine transforms with `*`, which affine 3.1 flags;
                # a PNG is a picture: it has no georeference to lose.
                warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
                warnings.filterwarnings("ignore", "Dataset has no geotransform")
                _preview(path, found["geospatial"], png)
        except Exception:  # a preview is a convenience: the analysis stands without one
            png.unlink(missing_ok=True)
        else:
            found["preview_sha256"] = store(png)
            png.unlink()
    return found


def _preview(path: Path, kind: str, png: Path) -> None:
    """A PNG of at most PREVIEW_SIZE pixels a side: a raster's first band (or first three, as
    RGB) stretched to its 2-98 % range with nodata transparent, or a vector's features filled
    on a transparent ground."""
    import numpy as np
    import rasterio

    if kind == "raster":
        with rasterio.open(path) as dataset:
            scale = max(dataset.width, dataset.height) / PREVIEW_SIZE
            shape = (max(1, round(dataset.height / scale)), max(1, round(dataset.width / scale)))
            if scale < 1:
                shape = (dataset.height, dataset.width)
            bands = [1, 2, 3] if dataset.count >= 3 else [1]
            values = dataset.read(bands, out_shape=(len(bands), *shape), masked=True)
        valid = values.compressed()
        low, high = np.percentile(valid, [2, 98]) if valid.size else (0.0, 1.0)
        stretched = np.clip((values.filled(low) - low) / max(high - low, 1e-12), 0, 1)
        colour = (stretched * 255).astype("uint8")
        if len(bands) == 1:
            colour = np.repeat(colour, 3, axis=0)
        alpha = np.where(np.ma.getmaskarray(values).any(axis=0), 0, 255).astype("uint8")
    else:
        from rasterio.features import rasterize
        from rasterio.transform import from_bounds

        geometries = [g for g, _ in read_features(path)]
        west, south, east, north = union_bounds(geometries)
        width_deg, height_deg = max(east - west, 1e-9), max(north - south, 1e-9)
        scale = max(width_deg, height_deg) / PREVIEW_SIZE
        shape = (max(1, round(height_deg / scale)), max(1, round(width_deg / scale)))
        transform = from_bounds(west, south, east, north, shape[1], shape[0])
        inside = rasterize(geometries, out_shape=shape, transform=transform, all_touched=True)
        colour = np.stack([np.full(shape, c, dtype="uint8") for c in (31, 119, 180)])
        alpha = np.where(inside > 0, 255, 0).astype("uint8")
    image = np.concatenate([colour, alpha[np.newaxis]])
    profile = {"driver": "PNG", "width": shape[1], "height": shape[0], "count": 4}
    with rasterio.open(png, "w", dtype="uint8", **profile) as out:
        out.write(image)


def _vector(path: Path) -> dict[str, Any]:
    features = read_features(path)
    geometries = [geometry for geometry, _ in features]
    area = length = 0.0
    points = lines = polygons = 0
    for geometry in geometries:
        kind = geometry.geom_type
        if "Polygon" in kind:
            polygons += len(getattr(geometry, "geoms", [geometry]))
            signed, perimeter = GEOD.geometry_area_perimeter(geometry)
            area += abs(signed)
            length += perimeter
        elif "LineString" in kind:
            lines += len(getattr(geometry, "geoms", [geometry]))
            length += GEOD.geometry_length(geometry)
        elif "Point" in kind:
            points += len(getattr(geometry, "geoms", [geometry]))
    return {
        "crs": "EPSG:4326",
        "bounds": union_bounds(geometries),
        "area": round(area, 3),
        "length": round(length, 3),
        "points": points,
        "lines": lines,
        "polygons": polygons,
        "geospatial": "vector",
    }


def _raster(path: Path) -> dict[str, Any]:
    import numpy as np
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.warp import transform_bounds

    try:
        with rasterio.open(path) as dataset:
            crs = dataset.crs.to_string() if dataset.crs else None
            bounds = list(dataset.bounds)
            if dataset.crs and not dataset.crs.is_geographic:
                bounds = list(transform_bounds(dataset.crs, "EPSG:4326", *bounds))
            resolution = abs(dataset.res[0])
            if dataset.crs and dataset.crs.is_geographic:
                resolution = resolution * 111_320  # metres per degree at the equator
            selectors = []
            for band in range(1, dataset.count + 1):
                values = dataset.read(band, masked=True).astype("float64")
                valid = values.compressed()
                minimum = float(valid.min()) if valid.size else None
                maximum = float(valid.max()) if valid.size else None
                histogram: list[float] = []
                if valid.size:
                    counts, _ = np.histogram(
                        valid, bins=10, range=(float(valid.min()), float(valid.max()))
                    )
                    histogram = [float(c) for c in counts]
                selectors.append(
                    {
                        "selector": f"band{band}",
                        "category": "data",
                        "data_type": str(dataset.dtypes[band - 1]),
                        "minimum": minimum,
                        "maximum": maximum,
                        "mean": float(valid.mean()) if valid.size else None,
                        "sd": float(valid.std()) if valid.size else None,
                        "histogram_minimum": minimum,
                        "histogram_maximum": maximum,
                        "histogram": histogram,
                    }
                )
    except RasterioError as exc:
        raise Invalid(f"Not a readable raster: {exc}.") from exc
    return {
        "crs": crs,
        "bounds": [float(b) for b in bounds],
        "resolution": max(1, round(resolution)),
        "selectors": selectors,
        "geospatial": "raster",
    }


def _zip(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise Invalid(f"Not a readable zip file: {exc}.") from exc


def _shapefile(path: Path) -> dict[str, Any]:
    names = _zip(path)
    nested = [n for n in names if "/" in n.rstrip("/") or n.endswith("/")]
    if nested:
        raise Invalid(f"A Shapefile zip must be flat, with no folders; found {nested[0]!r}.")
    suffixes = {Path(n).suffix.lower() for n in names}
    missing = [s for s in (".shp", ".shx", ".dbf") if s not in suffixes]
    if missing:
        raise Invalid(f"A Shapefile zip must hold .shp, .shx and .dbf; missing {missing}.")
    return {"geospatial": "vector"}


def _stac_item(file_name: str, found: dict[str, Any]) -> dict[str, Any]:
    import pystac

    bounds = found.get("bounds")
    geometry = None
    if bounds:
        west, south, east, north = bounds
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        geometry = {"type": "Polygon", "coordinates": [ring]}
    item = pystac.Item(
        id=file_name,
        geometry=geometry,
        bbox=bounds,
        datetime=datetime.now(UTC),
        properties={},
    )
    item.add_asset("data", pystac.Asset(href=file_name, roles=["data"]))
    document: dict[str, Any] = item.to_dict(include_self_link=False)
    return document
