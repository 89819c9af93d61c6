"""A real plugin for the group tests: a service with a maximum region size and an aggregator,
whose slice component fails on purpose for the slice named by its option ``fail_slice``."""

from __future__ import annotations

import csv
import time

from cairn import hookimpl
from cairn.processing._context import ComponentContext
from cairn.processing._geo import read_features
from cairn.processing.slicing import area_km2
from cairn.processing.ssd import ComponentSpec, InputSpec, OptionSpec, Service

SPLIT_ID = "0c9a7f54-0000-4000-8000-00000000f001"
MAXIMUM_KM2 = 1000.0

SPLIT = Service(
    id=SPLIT_ID,
    ssd_id=SPLIT_ID[:-1] + "0",
    version=1,
    name="Test: split",
    keywords=["Test"],
    categories=["Test"],
    summary="Measures each slice; the aggregator adds them up.",
    description="Measures each slice; the aggregator adds them up.",
    inputs=[InputSpec(1, "GeoJSON", "Region")],
    options=[
        OptionSpec("fail_slice", "numeric", default="0", title="Slice (1-based) that fails"),
        OptionSpec("seconds", "numeric", default="0", title="Seconds each slice sleeps"),
    ],
    components=[
        ComponentSpec("Measure", "tests.processing.group_services:measure"),
        ComponentSpec("Add up", "tests.processing.group_services:add_up"),
    ],
    price="4",
    maximum_area_km2=MAXIMUM_KM2,
    aggregator="Add up",
)


def measure(ctx: ComponentContext) -> None:
    time.sleep(float(ctx.options["seconds"] or 0))
    features = read_features(ctx.inputs[0][0])
    slices = {p.get("cairn_slice") for _, p in features}
    if int(ctx.options["fail_slice"] or 0) in slices:
        raise RuntimeError(f"slice {sorted(str(s) for s in slices)} fails on purpose")
    table = ctx.work_dir / "area.csv"
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["slice", "area_km2"])
        for geometry, properties in features:
            writer.writerow([properties.get("cairn_slice", 0), f"{area_km2(geometry):.6f}"])
    ctx.add_output("Area", "CSV", table)


def add_up(ctx: ComponentContext) -> None:
    total, rows = 0.0, 0
    for table in ctx.inputs[1]:
        with table.open() as source:
            for row in csv.DictReader(source):
                total += float(row["area_km2"])
                rows += 1
    out = ctx.work_dir / "total.csv"
    out.write_text(f"tables,rows,area_km2\n{len(ctx.inputs[1])},{rows},{total:.6f}\n")
    ctx.add_output("Total", "CSV", out)


@hookimpl
def register_services() -> list[Service]:
    return [SPLIT]
