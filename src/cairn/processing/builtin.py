"""cairn's built-in services, shipped as a plugin on ``register_services``; they need no network.

All their demo data is synthetic and says so: ``Elevation`` samples a synthetic terrain that is
generated deterministically from the coordinates, so it covers any region asked for.
"""

from __future__ import annotations

import csv
import json
import math

from cairn.hookspecs import hookimpl
from cairn.processing._context import ComponentContext
from cairn.processing._geo import GEOD, read_features, union_bounds
from cairn.processing.ssd import ComponentSpec, InputSpec, OptionSpec, Service

__all__ = ["ELEVATION", "REGION_STATISTICS", "register_services"]

_REGION = InputSpec(1, "GeoJSON", "Region", "The region of interest (polygons).")

ELEVATION = Service(
    id="3f1c2a9e-6a53-4d7e-9a55-1f2b8f0e0a01",
    ssd_id="3f1c2a9e-6a53-4d7e-9a55-1f2b8f0e0a00",
    version=1,
    name="Elevation",
    keywords=["Elevation", "DEM", "Terrain"],
    categories=["Terrain"],
    summary="Elevation of a region, clipped from a terrain model, with its statistics.",
    description="Clips the configured terrain model to the region and outputs a GeoTIFF of "
    "heights in metres plus a CSV of statistics. The default terrain is SYNTHETIC: generated "
    "deterministically from the coordinates, so every region is covered.",
    inputs=[_REGION],
    options=[
        OptionSpec(
            "resolution",
            "numeric",
            default="100",
            validation="min=10;max=1000",
            title="Resolution",
            description="Pixel size in metres.",
        ),
    ],
    components=[ComponentSpec("Elevation", "cairn.processing.builtin:run_elevation")],
    price="1",
    outputs=["Elevation (GeoTIFF, synthetic terrain)", "Elevation statistics (CSV)"],
)

REGION_STATISTICS = Service(
    id="8d0e4b61-2f3a-4c58-b1f7-5e9a2c7d3b11",
    ssd_id="8d0e4b61-2f3a-4c58-b1f7-5e9a2c7d3b10",
    version=1,
    name="Region statistics",
    keywords=["Region", "Statistics", "Area"],
    categories=["Vector"],
    summary="Geodesic area, perimeter, bounds and centroid of every feature of a region.",
    description="Measures each feature on the WGS84 ellipsoid and outputs the features with "
    "their measures as properties (GeoJSON) and as a table (CSV).",
    inputs=[_REGION],
    options=[],
    components=[ComponentSpec("Region statistics", "cairn.processing.builtin:run_statistics")],
    price="1",
    outputs=["Region with measures (GeoJSON)", "Measures (CSV)"],
)


@hookimpl
def register_services() -> list[Service]:
    return [ELEVATION, REGION_STATISTICS]


# --- components (run in worker processes) ------------------------------------------------------


def synthetic_height(lon: float, lat: float) -> float:
    """A SYNTHETIC terrain height in metres: smooth hills from sines of the coordinates."""
    return (
        300.0
        + 180.0 * math.sin(lon * 37.0) * math.cos(lat * 53.0)
        + 60.0 * math.sin((lon + lat) * 211.0)
        + 20.0 * math.cos(lon * 997.0 - lat * 613.0)
    )


def run_elevation(ctx: ComponentContext) -> None:
    import numpy as np
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.transform import from_origin

    features = read_features(ctx.inputs[0][0])
    geometries = [geometry for geometry, _ in features]
    west, south, east, north = union_bounds(geometries)
    metres = float(ctx.options.get("resolution") or 100.0)
    step = metres / 111_320.0
    width = max(1, math.ceil((east - west) / step))
    height = max(1, math.ceil((north - south) / step))
    if width * height > 25_000_000:
        raise ValueError(f"The region needs {width}x{height} pixels; use a coarser resolution.")
    ctx.log(f"Sampling synthetic terrain on a {width}x{height} grid of {metres:g} m")
    lons = west + (np.arange(width) + 0.5) * step
    lats = north - (np.arange(height) + 0.5) * step
    grid_lon, grid_lat = np.meshgrid(lons, lats)
    heights = np.vectorize(synthetic_height)(grid_lon, grid_lat).astype("float32")
    ctx.progress(50)
    transform = from_origin(west, north, step, step)
    outside = geometry_mask(geometries, out_shape=(height, width), transform=transform)
    nodata = -9999.0
    heights[outside] = nodata
    tif = ctx.work_dir / "elevation.tif"
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
    }
    with rasterio.open(tif, "w", **profile) as dataset:
        dataset.write(heights, 1)
        dataset.update_tags(source="cairn SYNTHETIC terrain (not real elevation data)")
    inside = heights[~outside]
    stats = ctx.work_dir / "elevation_statistics.csv"
    with stats.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["statistic", "metres"])
        if inside.size:
            for name, value in (
                ("minimum", inside.min()),
                ("maximum", inside.max()),
                ("mean", inside.mean()),
                ("sd", inside.std()),
            ):
                writer.writerow([name, f"{float(value):.2f}"])
        writer.writerow(["pixels", int(inside.size)])
    ctx.add_output("Elevation", "GeoTIFF", tif)
    ctx.add_output("Elevation statistics", "CSV", stats)
    ctx.log("Elevation written")


def run_statistics(ctx: ComponentContext) -> None:
    features = read_features(ctx.inputs[0][0])
    rows = []
    out_features = []
    for index, (geometry, properties) in enumerate(features):
        signed, perimeter = GEOD.geometry_area_perimeter(geometry)
        centroid = geometry.centroid
        measures = {
            "feature": index,
            "area_m2": round(abs(signed), 3),
            "perimeter_m": round(perimeter, 3),
            "west": geometry.bounds[0],
            "south": geometry.bounds[1],
            "east": geometry.bounds[2],
            "north": geometry.bounds[3],
            "centroid_lon": centroid.x,
            "centroid_lat": centroid.y,
        }
        rows.append(measures)
        out_features.append(
            {
                "type": "Feature",
                "geometry": json.loads(json.dumps(geometry.__geo_interface__)),
                "properties": {**properties, **measures},
            }
        )
    geojson = ctx.work_dir / "region_statistics.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": out_features}))
    table = ctx.work_dir / "region_statistics.csv"
    with table.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ctx.add_output("Region statistics", "GeoJSON", geojson)
    ctx.add_output("Region measures", "CSV", table)
    ctx.log(f"Measured {len(rows)} feature(s)")
