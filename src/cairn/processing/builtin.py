"""cairn's built-in services and dispatchers, shipped as a plugin on ``register_services`` and
``register_dispatchers``; they need no network.

All their demo data is synthetic and says so: ``Elevation`` samples a synthetic terrain that is
generated deterministically from the coordinates, so it covers any region asked for, and
``Demo: Sentinel-2 Cloud Classification`` classifies SYNTHETIC imagery generated from the
coordinates and the date (no satellite data is fetched).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn.errors import Invalid
from cairn.hookspecs import hookimpl
from cairn.processing._context import ComponentContext, DispatchContext
from cairn.processing._geo import GEOD, read_features, union_bounds
from cairn.processing.dispatchers import AWS_S3, EMAIL, STORAGE_URL, WEBHOOK, dispatch_path
from cairn.processing.ssd import ComponentSpec, Dispatcher, InputSpec, OptionSpec, Service

__all__ = [
    "CLOUD_CLASSIFICATION",
    "ELEVATION",
    "LOCAL_FOLDER",
    "RASTER_STATISTICS",
    "REGION_STATISTICS",
    "register_dispatchers",
    "register_services",
]

_REGION = InputSpec(1, "GeoJSON", "Region", "The region of interest (polygons).")


def _dem_sources(session: Any) -> dict[str, Any]:
    """Elevation's server-side context: the DEM sources an administrator registered."""
    from cairn.processing.service import dem_sources  # the server's side, not the workers'

    return {"dem_sources": dem_sources(session)}


def _builtin(stem: str, name: str, *, chain: Sequence[tuple[str, str]], **fields: Any) -> Service:
    """A built-in service, version 1, priced 1 credit: ``id`` is ``stem`` + "1", ``ssd_id``
    (stable across versions) ``stem`` + "0"; ``chain`` pairs each component's name with its
    function in this module, in order."""
    return Service(
        id=f"{stem}1",
        ssd_id=f"{stem}0",
        version=1,
        name=name,
        components=[ComponentSpec(n, f"cairn.processing.builtin:{f}") for n, f in chain],
        price="1",
        **fields,
    )


ELEVATION = _builtin(
    "3f1c2a9e-6a53-4d7e-9a55-1f2b8f0e0a0",
    "Elevation",
    chain=[("Elevation", "run_elevation")],
    keywords=["Elevation", "DEM", "Terrain"],
    categories=["Terrain"],
    summary="Elevation of a region, clipped from a terrain model, with its statistics.",
    description="Clips the terrain model covering the region (a DEM source the server's "
    "administrator registered, at its own resolution) and outputs a GeoTIFF of heights in "
    "metres plus a CSV of statistics. A region outside every registered source fails saying "
    "so. With no source registered the terrain is SYNTHETIC: generated deterministically from "
    "the coordinates, so every region is covered.",
    inputs=[_REGION],
    options=[
        OptionSpec(
            "resolution",
            "numeric",
            default="100",
            validation="min=10;max=1000",
            title="Resolution",
            description="Pixel size in metres of the synthetic terrain (a registered DEM "
            "source keeps its own).",
        ),
    ],
    outputs=["Elevation (GeoTIFF)", "Elevation statistics (CSV)"],
    context=_dem_sources,
)

REGION_STATISTICS = _builtin(
    "8d0e4b61-2f3a-4c58-b1f7-5e9a2c7d3b1",
    "Region statistics",
    chain=[("Region statistics", "run_statistics")],
    keywords=["Region", "Statistics", "Area"],
    categories=["Vector"],
    summary="Geodesic area, perimeter, bounds and centroid of every feature of a region.",
    description="Measures each feature on the WGS84 ellipsoid and outputs the features with "
    "their measures as properties (GeoJSON) and as a table (CSV).",
    inputs=[_REGION],
    options=[],
    outputs=["Region with measures (GeoJSON)", "Measures (CSV)"],
)


RASTER_STATISTICS = _builtin(
    "c4a7d2e0-91b3-4f6a-8e25-7b0d3c9f1a2",
    "Raster statistics",
    chain=[("Raster statistics", "run_raster_statistics")],
    keywords=["Raster", "Statistics", "Histogram"],
    categories=["Raster"],
    summary="Per-band statistics and a histogram of a raster within a region.",
    description="Masks the raster (GeoTIFF, DEM or JPEG2000) to the region's polygons, leaving "
    "out nodata pixels, and outputs per band the pixel count, minimum, maximum, mean, standard "
    "deviation and median (CSV) and a histogram of `bins` equal bins between the band's "
    "minimum and maximum (CSV).",
    inputs=[
        InputSpec(1, "GeoTIFF", "Raster", "The raster to measure."),
        InputSpec(2, "GeoJSON", "Region", "The region of interest (polygons, WGS84)."),
    ],
    options=[
        OptionSpec(
            "bins",
            "numeric",
            default="10",
            validation="min=1;max=1000",
            title="Histogram bins",
            description="How many equal bins the histogram has.",
        ),
    ],
    outputs=["Raster statistics (CSV)", "Raster histogram (CSV)"],
)

_DATE_FORMAT = "format=%Y-%m-%dT%H:%M:%SZ"
# The classes in the order the manual's Detailed Example reads the 10-bin histogram of a
# selector: bin 0 ground, 3 shadow, 6 thick cloud, 9 thin cloud (the bins of 0..3).
CLASSES = {0: "ground", 1: "cloud shadow", 2: "thick cloud", 3: "thin cloud"}
OUTSIDE = 255

CLOUD_CLASSIFICATION = _builtin(
    "5b9e0f3c-2d7a-4a61-9c84-e1f6a2b3c4d",
    "Demo: Sentinel-2 Cloud Classification",
    chain=[
        ("Sentinel-2 Cloud Classification", "run_cloud_classification"),
        ("Statistics Aggregator", "run_class_statistics"),
    ],
    keywords=["Demo", "Sentinel-2", "Cloud", "Classification"],
    categories=["Demo", "Optical"],
    summary="A DEMO on SYNTHETIC imagery: cloud classification of a region for a date.",
    description="Classifies each 100 m pixel of the region as ground (0), cloud shadow (1), "
    "thick cloud (2) or thin cloud (3) (255, nodata, is outside the region) and outputs a "
    "single-band GeoTIFF, then a CSV of the class counts (the Statistics Aggregator). "
    "The imagery is SYNTHETIC, generated deterministically from the "
    "coordinates and the acquisition date: no Sentinel-2 data is fetched. With `latest_date` "
    "the acquisition date is today; otherwise it is `end_date`, or `start_date` without one.",
    inputs=[_REGION],
    options=[
        OptionSpec(
            "latest_date",
            "boolean",
            default="true",
            title="Latest date",
            description="Classify the newest (synthetic) scene instead of a historic one.",
        ),
        OptionSpec(
            "start_date",
            "datetime",
            required=False,
            nullable=True,
            validation=_DATE_FORMAT,
            title="Start date",
            description="The historic date to classify, when latest_date is false.",
        ),
        OptionSpec(
            "end_date",
            "datetime",
            required=False,
            nullable=True,
            validation=_DATE_FORMAT,
            title="End date",
            description="The end of the historic range; its date is the one classified.",
        ),
    ],
    outputs=["Cloud classification (GeoTIFF, synthetic)", "Class statistics (CSV)"],
    # Small enough that the Lake District region (~2,400 km²) is split into a group (part 2).
    maximum_area_km2=1000.0,
    aggregator="Statistics Aggregator",
)


@hookimpl
def register_services() -> list[Service]:
    return [ELEVATION, REGION_STATISTICS, RASTER_STATISTICS, CLOUD_CLASSIFICATION]


# --- dispatchers (run in the server, after an execution succeeded) ------------------------------


def folder_inside(text: Any) -> Path:
    """A dispatch folder as given: relative, with no ``..`` (it names a folder inside the
    dispatch root); ``Invalid`` otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise Invalid("Option 'folder' names a folder inside the dispatch root.")
    path = Path(text.strip())
    if path.is_absolute() or ".." in path.parts or "\\" in text or "\x00" in text:
        raise Invalid(
            f"Option 'folder' must stay inside the dispatch root (relative, no '..'); "
            f"got {text[:200]!r}."
        )
    return path


def _check_local_folder(options: Any) -> None:
    folder_inside(options["folder"])


def dispatch_to_folder(ctx: DispatchContext) -> None:
    """Copy the files to ``<dispatch root>/<folder>/<execution id>/<n>_<component>/<data
    item>/<file>``; a folder that resolves outside the root (a link) is refused."""
    root = ctx.settings.dispatch_root
    assert root is not None  # Settings fills it in
    root.mkdir(parents=True, exist_ok=True)
    target = (root / folder_inside(ctx.options["folder"]) / ctx.execution_id).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"the folder {ctx.options['folder']!r} leads outside the dispatch root")
    for file in ctx.files:
        where = target / dispatch_path(file)
        where.parent.mkdir(parents=True, exist_ok=True)
        with ctx.open(file) as source, where.open("wb") as out:
            shutil.copyfileobj(source, out)
    ctx.log(f"copied {len(ctx.files)} file(s) to {target}")


LOCAL_FOLDER = Dispatcher(
    id="9e2d41c7-3b58-4f0a-a6d3-0c5b7e1f2a01",
    ssd_id="9e2d41c7-3b58-4f0a-a6d3-0c5b7e1f2a00",
    version=1,
    name="Local folder",
    keywords=["Dispatcher", "Folder"],
    categories=["Dispatcher"],
    summary="Copies the outputs to a folder on the server.",
    description="After an execution succeeds, copies its outputs (the last component's, or "
    "every component's with dispatch_intermediate) into `folder`, a folder inside the server's "
    "dispatch root (CAIRN_DISPATCH_ROOT), under the execution's id.",
    options=[
        OptionSpec(
            "folder",
            "string",
            default="outputs",
            title="Folder",
            description="A folder inside the server's dispatch root (relative, no '..').",
        )
    ],
    dispatch=dispatch_to_folder,
    check=_check_local_folder,
)


@hookimpl
def register_dispatchers() -> list[Dispatcher]:
    return [LOCAL_FOLDER, AWS_S3, STORAGE_URL, EMAIL, WEBHOOK]


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
    """Clip the registered DEM source covering the region, or (none registered) sample the
    synthetic terrain; then write the heights and their statistics."""
    features = read_features(ctx.inputs[0][0])
    geometries = [geometry for geometry, _ in features]
    sources = ctx.options.get("dem_sources") or []
    if sources:
        heights, nodata = _clip_dem(ctx, sources, geometries)
    else:
        heights, nodata = _synthetic_terrain(ctx, geometries)
    inside = heights[heights != nodata]
    rows: list[list[Any]] = []
    if inside.size:
        for name, value in (
            ("minimum", inside.min()),
            ("maximum", inside.max()),
            ("mean", inside.mean()),
            ("sd", inside.std()),
        ):
            rows.append([name, f"{float(value):.2f}"])
    stats = _write_csv(
        ctx.work_dir / "elevation_statistics.csv",
        ["statistic", "metres"],
        [*rows, ["pixels", int(inside.size)]],
    )
    ctx.add_output("Elevation", "GeoTIFF", ctx.work_dir / "elevation.tif")
    ctx.add_output("Elevation statistics", "CSV", stats)
    ctx.log("Elevation written")


def _clip_dem(ctx: ComponentContext, sources: list[dict[str, Any]], geometries: list[Any]) -> Any:
    """The first registered source whose bounds hold the region's, masked to the region at
    its own pixels (values untouched); (heights, nodata)."""
    import numpy as np
    import rasterio
    from rasterio.mask import mask
    from rasterio.warp import transform_geom

    west, south, east, north = union_bounds(geometries)
    source = next(
        (
            s
            for s in sources
            if s["bounds"][0] <= west
            and s["bounds"][1] <= south
            and s["bounds"][2] >= east
            and s["bounds"][3] >= north
        ),
        None,
    )
    if source is None:
        names = ", ".join(s["name"] for s in sources)
        raise ValueError(
            f"The region ({west:.4f}, {south:.4f}, {east:.4f}, {north:.4f}) lies outside every "
            f"registered DEM source ({names}); register one that covers it."
        )
    with rasterio.open(source["path"]) as dataset:
        shapes = [transform_geom("EPSG:4326", dataset.crs, g.__geo_interface__) for g in geometries]
        nodata = dataset.nodata
        if nodata is None:
            kind = np.dtype(dataset.dtypes[0])
            nodata = np.iinfo(kind).max if kind.kind == "u" else -9999
        values, transform = mask(dataset, shapes, crop=True, indexes=1, nodata=nodata)
        ctx.log(
            f"Clipped DEM source '{source['name']}' to a {values.shape[1]}x{values.shape[0]} grid"
        )
        profile = {
            "driver": "GTiff",
            "width": values.shape[1],
            "height": values.shape[0],
            "count": 1,
            "dtype": values.dtype,
            "crs": dataset.crs,
            "transform": transform,
            "nodata": nodata,
            "compress": "deflate",
        }
    with rasterio.open(ctx.work_dir / "elevation.tif", "w", **profile) as out:
        out.write(values, 1)
        out.update_tags(source=f"DEM source '{source['name']}'")
    return values, nodata


def _synthetic_terrain(ctx: ComponentContext, geometries: list[Any]) -> Any:
    """The SYNTHETIC terrain sampled over the region at ``resolution``; (heights, nodata)."""
    import numpy as np
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.transform import from_origin

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
    return heights, nodata


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


def run_raster_statistics(ctx: ComponentContext) -> None:
    import numpy as np
    import rasterio
    from rasterio.mask import mask
    from rasterio.warp import transform_geom

    geometries = [g.__geo_interface__ for g, _ in read_features(ctx.inputs[1][0])]
    bins = int(ctx.options.get("bins") or 10)
    stats_rows: list[list[Any]] = []
    histogram_rows: list[list[Any]] = []
    for raster in ctx.inputs[0]:
        with rasterio.open(raster) as dataset:
            shapes = geometries
            if dataset.crs and dataset.crs.to_epsg() != 4326:
                shapes = [transform_geom("EPSG:4326", dataset.crs, g) for g in geometries]
            try:
                values, _ = mask(dataset, shapes, crop=True, filled=False)
            except ValueError as exc:  # rasterio: "Input shapes do not overlap raster."
                raise ValueError(f"{raster.name}: the region does not overlap the raster.") from exc
            ctx.log(f"{raster.name}: {dataset.count} band(s) masked to the region")
            for band in range(values.shape[0]):
                valid = np.ma.masked_invalid(values[band].astype("float64")).compressed()
                name = f"band{band + 1}"
                if not valid.size:
                    stats_rows.append([raster.name, name, 0, "", "", "", "", ""])
                    continue
                low, high = float(valid.min()), float(valid.max())
                stats_rows.append(
                    [raster.name, name, int(valid.size)]
                    + [_figure(v) for v in (low, high, valid.mean(), valid.std())]
                    + [_figure(np.median(valid))]
                )
                counts, edges = np.histogram(valid, bins=bins, range=(low, high))
                for index, count in enumerate(counts):
                    histogram_rows.append(
                        [
                            raster.name,
                            name,
                            index,
                            _figure(edges[index]),
                            _figure(edges[index + 1]),
                            int(count),
                        ]
                    )
    statistics = _write_csv(
        ctx.work_dir / "raster_statistics.csv",
        ["file", "band", "pixels", "minimum", "maximum", "mean", "sd", "median"],
        stats_rows,
    )
    histogram = _write_csv(
        ctx.work_dir / "raster_histogram.csv",
        ["file", "band", "bin", "lower", "upper", "count"],
        histogram_rows,
    )
    ctx.add_output("Raster statistics", "CSV", statistics)
    ctx.add_output("Raster histogram", "CSV", histogram)


def _figure(value: Any) -> str:
    return f"{float(value):.6g}"


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def acquisition_date(options: Any) -> datetime:
    """The date a Sentinel-2 demo execution classifies (see ``CLOUD_CLASSIFICATION``)."""
    if options.get("latest_date") in (None, True):
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    chosen = options.get("end_date") or options.get("start_date")
    if not isinstance(chosen, datetime):
        raise ValueError("With latest_date false, give start_date (and optionally end_date).")
    return chosen if chosen.tzinfo else chosen.replace(tzinfo=UTC)


def synthetic_cloud(lon: Any, lat: Any, day: int) -> Any:
    """SYNTHETIC cloud cover in 0..1 at (lon, lat) on day ``day``: drifting sine banks."""
    import numpy as np

    drift = day * 0.37
    return 0.5 + 0.5 * (
        0.6 * np.sin(lon * 41.0 + drift) * np.cos(lat * 29.0 - drift)
        + 0.4 * np.sin((lon - lat) * 173.0 + 2 * drift)
    )


def run_cloud_classification(ctx: ComponentContext) -> None:
    import numpy as np
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.transform import from_origin

    date = acquisition_date(ctx.options)
    features = read_features(ctx.inputs[0][0])
    geometries = [geometry for geometry, _ in features]
    west, south, east, north = union_bounds(geometries)
    step_lat = 100.0 / 111_320.0
    step_lon = step_lat / max(0.1, math.cos(math.radians((south + north) / 2)))
    width = max(1, math.ceil((east - west) / step_lon))
    height = max(1, math.ceil((north - south) / step_lat))
    if width * height > 25_000_000:
        raise ValueError(f"The region needs {width}x{height} pixels of 100 m; it is too large.")
    ctx.log(f"Classifying SYNTHETIC imagery of {date:%Y-%m-%d} on a {width}x{height} grid")
    lons = west + (np.arange(width) + 0.5) * step_lon
    lats = north - (np.arange(height) + 0.5) * step_lat
    grid_lon, grid_lat = np.meshgrid(lons, lats)
    day = date.toordinal()
    cover = synthetic_cloud(grid_lon, grid_lat, day)
    # A shadow falls where the cloud is a little to the south-east (the sun in the south-west).
    shadow = synthetic_cloud(grid_lon - 0.004, grid_lat + 0.003, day) > 0.8
    classes = np.select([cover > 0.8, cover > 0.6, shadow], [2, 3, 1], default=0).astype("uint8")
    ctx.progress(60)
    transform = from_origin(west, north, step_lon, step_lat)
    outside = geometry_mask(geometries, out_shape=(height, width), transform=transform)
    classes[outside] = OUTSIDE
    tif = ctx.work_dir / f"cloud_classification_{date:%Y%m%d}.tif"
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": OUTSIDE,
        "compress": "deflate",
    }
    with rasterio.open(tif, "w", **profile) as dataset:
        dataset.write(classes, 1)
        dataset.set_band_description(1, "cloud classification")
        dataset.update_tags(
            source="cairn SYNTHETIC imagery (not Sentinel-2 data)",
            acquisition_date=f"{date:%Y-%m-%d}",
            classes=", ".join(f"{k}={v}" for k, v in CLASSES.items()),
        )
    ctx.add_output("Cloud classification", "GeoTIFF", tif)
    ctx.log("Classification written")


def run_class_statistics(ctx: ComponentContext) -> None:
    """The aggregator: pixel count and share of each class over every classified raster."""
    import numpy as np
    import rasterio

    counts = dict.fromkeys(CLASSES, 0)
    for raster in ctx.inputs[1]:
        with rasterio.open(raster) as dataset:
            values = dataset.read(1)
        for value, count in zip(*np.unique(values, return_counts=True), strict=True):
            if int(value) in counts:
                counts[int(value)] += int(count)
    total = sum(counts.values())
    rows = [
        [value, name, counts[value], _figure(100.0 * counts[value] / total) if total else ""]
        for value, name in CLASSES.items()
    ]
    table = _write_csv(
        ctx.work_dir / "cloud_statistics.csv", ["class", "name", "pixels", "percent"], rows
    )
    ctx.add_output("Class statistics", "CSV", table)
    ctx.log(f"Counted {total} classified pixel(s)")
