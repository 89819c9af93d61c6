"""What `cairn process download` writes: the Fusion CLI's folder layout, a metrics CSV and STAC.

Layout (as the Fusion Platform's CLI writes it)::

    <process>/<group index>/<n>_<component>/<Input|Output>_<k>_<data name>/<file>

``group index`` is the execution's place in its group (0 for an execution of a region that
was not split), ``n`` the component's place in the service's chain (1-based), ``k`` the data
item's place among the component's inputs or outputs (1-based).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cairn.client import Component, DataFile, DataItem, Execution, Process

__all__ = [
    "METRICS_COLUMNS",
    "Planned",
    "plan_downloads",
    "safe_name",
    "write_metrics",
    "write_stac",
]

METRICS_COLUMNS = [
    "execution_id",
    "group_index",
    "process",
    "component",
    "chain_index",
    "success",
    "started_at",
    "ended_at",
    "duration_s",
    "cpu_s",
    "memory_bytes",
    "runtime_s",
    "input_bytes",
    "output_bytes",
]


def safe_name(name: str) -> str:
    """A name as a folder name: runs of anything but letters, digits, ``.`` and ``-`` become
    ``_`` (so no name can climb out of the folder)."""
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("_")
    return cleaned if cleaned and cleaned not in (".", "..") else "_"


@dataclass
class Planned:
    """One data item of one component, and the folder its files go to."""

    execution: Execution
    component: Component
    role: str  # Input or Output
    item: DataItem
    files: list[DataFile]
    folder: Path


def plan_downloads(
    process: Process,
    executions: Sequence[Execution],
    root: Path,
    *,
    inputs: bool = False,
) -> Iterator[Planned]:
    """The data items to write for ``executions`` (outputs; inputs too with ``inputs``)."""
    base = root / safe_name(process.name)
    for execution in executions:
        group = base / str(execution.group_index or 0)
        for component in execution.components:
            place = group / f"{component.chain_index + 1}_{safe_name(component.name)}"
            roles: list[tuple[str, list[DataItem]]] = []
            if inputs:
                roles.append(("Input", list(component.inputs)))
            roles.append(("Output", list(component.outputs)))
            for role, items in roles:
                for k, item in enumerate(items, start=1):
                    folder = place / f"{role}_{k}_{safe_name(item.name)}"
                    yield Planned(execution, component, role, item, list(item.files), folder)


def _seconds(start: datetime | None, end: datetime | None) -> float | str:
    if start is None or end is None:
        return ""
    return round((end - start).total_seconds(), 3)


def write_metrics(
    path: Path, process: Process, executions: Sequence[Execution], planned: Sequence[Planned]
) -> Path:
    """One row per component of every execution: times, CPU, memory and data sizes."""
    sizes: dict[tuple[str, str], int] = {}
    for entry in planned:
        key = (entry.component.id, entry.role)
        sizes[key] = sizes.get(key, 0) + sum(f.size or 0 for f in entry.files)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(METRICS_COLUMNS)
        for execution in executions:
            for c in execution.components:
                writer.writerow(
                    [
                        execution.id,
                        execution.group_index if execution.group_index is not None else 0,
                        process.name,
                        c.name,
                        c.chain_index,
                        c.success,
                        c.started_at.isoformat() if c.started_at else "",
                        c.ended_at.isoformat() if c.ended_at else "",
                        _seconds(c.started_at, c.ended_at),
                        c.cpu if c.cpu is not None else "",
                        c.memory if c.memory is not None else "",
                        c.runtime if c.runtime is not None else "",
                        sizes.get((c.id, "Input"), ""),
                        sizes.get((c.id, "Output"), ""),
                    ]
                )
    return path


def write_stac(entry: Planned) -> list[Path]:
    """A STAC item per file (``.<file name>.stac``, from the server's analysis) and a STAC
    1.0 collection of them (``.collection.stac``) in the data item's folder."""
    import pystac

    entry.folder.mkdir(parents=True, exist_ok=True)
    items = []
    for file in entry.files:
        if not file.stac_item:
            continue
        item = pystac.Item.from_dict(json.loads(json.dumps(file.stac_item)))
        item.set_self_href(str(entry.folder / f".{file.file_name}.stac"))
        for asset in item.assets.values():
            asset.href = file.file_name
        items.append(item)
    if not items:
        return []
    boxes = [i.bbox for i in items if i.bbox]
    bbox = (
        [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ]
        if boxes
        else [-180.0, -90.0, 180.0, 90.0]
    )
    moments = [i.datetime for i in items if i.datetime is not None]
    started = entry.component.started_at or datetime.now(UTC)
    software = {o.name: o.value for o in entry.execution.options if o.value is not None}
    collection = pystac.Collection(
        id=entry.item.id,
        description=entry.item.name,
        extent=pystac.Extent(
            pystac.SpatialExtent([bbox]),
            pystac.TemporalExtent([[min(moments, default=started), max(moments, default=started)]]),
        ),
        license="proprietary",
        providers=[
            pystac.Provider(
                name="cairn",
                roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.LICENSOR],
                extra_fields={
                    "processing:lineage": entry.component.name,
                    "processing:datetime": started.isoformat(),
                    "processing:software": software,
                },
            )
        ],
        catalog_type=pystac.CatalogType.SELF_CONTAINED,
    )
    target = entry.folder / ".collection.stac"
    collection.set_self_href(str(target))
    written = []
    for item in items:
        where = Path(str(item.get_self_href()))
        collection.add_item(item)
        item.set_self_href(str(where))  # add_item lays items out its own way: keep ours
        written.append(where)
    for item, where in zip(items, written, strict=True):
        where.write_text(json.dumps(item.to_dict(transform_hrefs=True), indent=2))
    target.write_text(json.dumps(collection.to_dict(transform_hrefs=True), indent=2))
    written.append(target)
    return written
