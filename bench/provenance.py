"""Benchmark provenance capture and lineage queries.

Part 1: a Python script that reads 1,000 small files, writes 1,000 and computes, run plain
(``python script.py``), under ``cairn record`` (audit hooks) and under ``cairn record
--syscalls`` (strace), each a fresh process on a data folder migrated beforehand; best of
``--rounds``. Goals: record <= 1.10x plain, --syscalls <= 1.5x. It runs twice: "short" computes
a little per file (plain ~0.5 s, so its ratio mostly measures cairn's start-up), "long" does
``--work`` rounds of arithmetic per file (plain a few seconds), so its ratio measures capture.
The start-up alone is ``cairn record`` of an empty script against ``python`` of it.
``--compare SRC`` also runs another checkout's ``cairn record`` (``PYTHONPATH=SRC``, its own data
folder) in the same rounds, so a branch and ``main`` are measured under the same load.

Part 2: a synthetic history (``--runs`` runs in projects of 20, ~10 used/generated edges
per run) on SQLite and PostgreSQL; ``trace_runs`` upstream of random outputs and downstream of
random inputs, p50 / p95 (goal p50 <= 20 ms, p95 <= 100 ms), against a one-hop indexed lookup
(the runs that generated a hash) as the same-run baseline.

The result line is part 1's long script: ``provenance: cairn <record>s, baseline <plain>s, ratio``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common
from _common import detail, report, scratch_dir

_common.use_source_tree()

from sqlalchemy import create_engine, insert, select, text  # noqa: E402

from cairn.config import Settings  # noqa: E402
from cairn.db import make_engine, make_sessionmaker, migrate, session_scope  # noqa: E402
from cairn.provenance.models import FileVersion, Run, RunEdge  # noqa: E402
from cairn.provenance.service import trace_runs  # noqa: E402

SCRIPT = """\
import hashlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
work = int(sys.argv[2]) if len(sys.argv) > 2 else 0
total = 0
for i in range(1000):
    text = (root / "in" / f"{i:04d}.txt").read_text()
    numbers = [int(x) for x in text.split()]
    for round in range(work):
        numbers = [(n * 31 + round) % 1000003 for n in numbers]
    total += sum(numbers)
    digest = hashlib.sha256(text.encode()).hexdigest()
    (root / "out" / f"{i:04d}.json").write_text(json.dumps({"sum": sum(numbers), "h": digest}))
print(total)
"""


def _prepare(folder: Path) -> None:
    rng = random.Random(1)
    (folder / "in").mkdir(parents=True)
    (folder / "out").mkdir()
    for i in range(1000):
        numbers = " ".join(str(rng.randrange(10**6)) for _ in range(50))
        (folder / "in" / f"{i:04d}.txt").write_text(numbers)
    (folder / "script.py").write_text(SCRIPT)
    (folder / "empty.py").write_text("")


def _timed_process(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    return _timed_process_cpu(argv, env, cwd)[0]


def _timed_process_cpu(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the process and its children, strace
    included). On a shared machine the wall time mostly measures the other engineers' load;
    the CPU time is what the run itself cost."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def part1(
    rounds: int, work: int, now: str | None = None, compare: str | None = None
) -> tuple[float, float]:
    with scratch_dir() as root:
        work_dir = root / "work"
        _prepare(work_dir)
        env = {**os.environ, "CAIRN_DATA_DIR": str(root / "data")}
        env.pop("CAIRN_DATABASE_URL", None)
        cairn = [sys.executable, "-m", "cairn.cli.main"]
        envs = {"": env}
        if compare:  # another checkout's cairn, on a data folder of its own, same interpreter
            envs[" (compare)"] = {
                **env, "PYTHONPATH": compare, "CAIRN_DATA_DIR": str(root / "data-compare"),
            }  # fmt: skip
        for side in envs.values():
            subprocess.run([*cairn, "admin", "migrate"], env=side, check=True, capture_output=True)
        detail(f"load average at the start: {_load_average()}")
        startup = {"plain": ([sys.executable, "empty.py"], env)}
        for suffix, side in envs.items():
            startup[f"record{suffix}"] = ([*cairn, "record", "empty.py"], side)
        best = _best_of(rounds, startup, work_dir, "start-up")
        detail(
            f"start-up: cairn record of an empty script {best['record']:.3f}s, "
            f"python {best['plain']:.3f}s (+{best['record'] - best['plain']:.3f}s); CPU "
            f"{best['record_cpu']:.3f}s vs {best['plain_cpu']:.3f}s"
        )
        for label, argv in (("short", [str(work_dir)]), ("long", [str(work_dir), str(work)])):
            variants = {"plain": ([sys.executable, "script.py", *argv], env)}
            for suffix, side in envs.items():
                variants[f"record{suffix}"] = ([*cairn, "record", "script.py", *argv], side)
                if shutil.which("strace"):
                    variants[f"syscalls{suffix}"] = (
                        [*cairn, "record", "--syscalls", "--", sys.executable, "script.py", *argv],
                        side,
                    )
            if not shutil.which("strace"):
                detail("strace not installed: --syscalls not measured")
            best = _best_of(rounds, variants, work_dir, label)
            plain = best["plain"]
            plain_cpu = best["plain_cpu"]
            for name in [n for n in variants if n != "plain"]:
                goal = "1.5x" if name.startswith("syscalls") else "1.10x"
                detail(
                    f"{label}: {name} {best[name]:.3f}s, {best[name] / plain:.2f}x plain "
                    f"{plain:.3f}s (goal {goal}); CPU {best[f'{name}_cpu']:.3f}s vs "
                    f"{plain_cpu:.3f}s, {best[f'{name}_cpu'] / plain_cpu:.2f}x"
                )
        detail(f"load average at the end: {_load_average()}")
        noworkflow = now or shutil.which("now")
        if noworkflow:  # on the short script: ~150x plain, the long one would take many minutes
            short = ["script.py", str(work_dir)]
            base, base_cpu = _timed_process_cpu([sys.executable, *short], env, work_dir)
            seconds, cpu = _timed_process_cpu([noworkflow, "run", *short], env, work_dir)
            detail(
                f"noWorkflow `now run` (short): {seconds:.3f}s wall, {seconds / base:.1f}x plain; "
                f"CPU {cpu:.3f}s, {cpu / base_cpu:.1f}x"
            )
        else:
            detail("noWorkflow (`now`) not installed here: not measured")
        return best["record"], plain


def _load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def _best_of(
    rounds: int,
    variants: dict[str, tuple[list[str], dict[str, str]]],
    cwd: Path,
    label: str,
) -> dict[str, float]:
    """Each variant's best time over ``rounds`` rounds (the variants take turns); the best CPU
    time goes in as ``<name>_cpu``. The spread (best to worst) of each is printed too."""
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(rounds):
        for name, (argv, env) in variants.items():
            seconds, used = _timed_process_cpu(argv, env, cwd)
            walls[name].append(seconds)
            cpus[name].append(used)
            detail(f"{label} round {i + 1} {name}: {seconds:.3f}s wall, {used:.3f}s CPU")
    for name in variants:
        detail(
            f"{label} spread {name}: wall {min(walls[name]):.3f}-{max(walls[name]):.3f}s, "
            f"CPU {min(cpus[name]):.3f}-{max(cpus[name]):.3f}s"
        )
    best = {name: min(values) for name, values in walls.items()}
    return {**best, **{f"{name}_cpu": min(values) for name, values in cpus.items()}}


# --- part 2 --------------------------------------------------------------------------------------


def _digest(n: int) -> str:
    return hashlib.sha256(n.to_bytes(8, "little")).hexdigest()


def _history(
    runs: int, rng: random.Random
) -> tuple[list[dict], list[dict], list[dict], list[str], list[str]]:
    run_rows, file_rows, edge_rows = [], [], []
    outputs_hashes: list[str] = []
    input_hashes: list[str] = []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    next_file = 1
    content = 0
    per_project = 20

    def version(path: str, sha: str) -> int:
        nonlocal next_file
        file_rows.append(
            {"id": next_file, "path": path, "path_key": hashlib.sha256(path.encode()).hexdigest(),
             "sha256": sha, "size": 100, "archived_sha256": None}
        )  # fmt: skip
        next_file += 1
        return next_file - 1

    project_outputs: list[tuple[int, str]] = []
    for seq in range(1, runs + 1):
        stage = (seq - 1) % per_project
        project = (seq - 1) // per_project
        if stage == 0:
            project_outputs = []
        run_rows.append(
            {"seq": seq, "id": str(uuid.UUID(int=rng.getrandbits(128))), "kind": "script",
             "script": f"/p{project}/step{stage}.py", "arguments": "[]", "packages": "[]",
             "started_at": start + timedelta(minutes=seq), "status": "ok"}
        )  # fmt: skip
        used = [version(f"/p{project}/step{stage}.py", _digest(10**9 + project * 100 + stage))]
        for k in range(3):
            content += 1
            sha = _digest(content)
            input_hashes.append(sha)
            used.append(version(f"/p{project}/raw/{stage}-{k}.csv", sha))
        for fid, _sha in rng.sample(project_outputs, min(2, len(project_outputs))):
            used.append(fid)
        for fid in set(used):
            edge_rows.append({"run_seq": seq, "file_id": fid, "access": "read", "at": start})
        for k in range(4):
            content += 1
            sha = _digest(content)
            fid = version(f"/p{project}/out/{stage}-{k}.dat", sha)
            edge_rows.append({"run_seq": seq, "file_id": fid, "access": "write", "at": start})
            project_outputs.append((fid, sha))
            outputs_hashes.append(sha)
    return run_rows, file_rows, edge_rows, outputs_hashes, input_hashes


def _load(url: str, data_dir: Path, rows: tuple[list[dict], list[dict], list[dict]]) -> object:
    engine = make_engine(Settings(data_dir=data_dir, database_url=url))
    migrate(engine)
    run_rows, file_rows, edge_rows = rows
    started = time.perf_counter()
    with engine.begin() as connection:
        for table, items in ((Run, run_rows), (FileVersion, file_rows), (RunEdge, edge_rows)):
            for i in range(0, len(items), 20000):
                connection.execute(insert(table), items[i : i + 20000])
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE"))
        else:
            connection.execute(text("ANALYZE"))
    detail(f"  loaded in {time.perf_counter() - started:.1f}s")
    return engine


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def _measure(
    engine: object, outputs: list[str], inputs: list[str], queries: int
) -> dict[str, tuple[float, float]]:
    rng = random.Random(3)
    factory = make_sessionmaker(engine)  # type: ignore[arg-type]
    found: dict[str, list[float]] = {"upstream": [], "downstream": [], "one-hop": []}
    # this process's CPU per trace: on SQLite the whole query, on PostgreSQL the client's share
    found.update({"upstream CPU": [], "downstream CPU": []})
    sizes: dict[str, list[int]] = {"upstream": [], "downstream": []}
    with session_scope(factory) as session:
        for _ in range(queries):
            for direction, pool in (("upstream", outputs), ("downstream", inputs)):
                target = rng.choice(pool)
                start, cpu = time.perf_counter(), time.process_time()
                lineage = trace_runs(session, target, direction=direction)
                found[direction].append(time.perf_counter() - start)
                found[f"{direction} CPU"].append(time.process_time() - cpu)
                sizes[direction].append(len(lineage.runs))
            target = rng.choice(outputs)
            start = time.perf_counter()
            session.execute(
                select(RunEdge.run_seq)
                .join(FileVersion, FileVersion.id == RunEdge.file_id)
                .where(FileVersion.sha256 == target, RunEdge.access == "write")
            ).all()
            found["one-hop"].append(time.perf_counter() - start)
    for direction, counts in sizes.items():
        detail(f"  {direction}: {statistics.mean(counts):.1f} runs per answer on average")
    return {name: _percentiles(samples) for name, samples in found.items()}


def part2(runs: int, queries: int, postgres_url: str | None) -> None:
    rng = random.Random(2)
    started = time.perf_counter()
    run_rows, file_rows, edge_rows, outputs, inputs = _history(runs, rng)
    detail(
        f"history: {len(run_rows)} runs, {len(file_rows)} file versions, {len(edge_rows)} edges "
        f"(built in {time.perf_counter() - started:.1f}s)"
    )
    targets: list[tuple[str, str]] = []
    with scratch_dir() as root:
        targets.append(("sqlite", f"sqlite:///{root / 'bench.db'}"))
        schema = None
        if postgres_url:
            schema = f"cairn_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            targets.append(("postgresql", f"{postgres_url}?options=-csearch_path%3D{schema}"))
        try:
            for name, url in targets:
                detail(f"{name}:")
                engine = _load(url, root / name, (run_rows, file_rows, edge_rows))
                results = _measure(engine, outputs, inputs, queries)
                for query, (p50, p95) in results.items():
                    detail(f"  {query}: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
                engine.dispose()  # type: ignore[attr-defined]
        finally:
            if schema:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=int, default=1200, help="Arithmetic rounds per file (long).")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CAIRN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL URL for part 2 ('' to skip).",
    )
    parser.add_argument(
        "--now", default=None, help="noWorkflow's `now` (default: on PATH; e.g. its own venv)."
    )
    parser.add_argument(
        "--compare",
        default=None,
        help="Another checkout's src (e.g. /work/main/src): part 1 measures its cairn record "
        "too, in the same rounds.",
    )
    parser.add_argument("--skip-part1", action="store_true")
    parser.add_argument("--skip-part2", action="store_true")
    args = parser.parse_args()
    if not args.skip_part2:
        part2(args.runs, args.queries, args.postgres or None)
    if not args.skip_part1:
        record, plain = part1(args.rounds, args.work, args.now, args.compare)
        report("provenance", record, plain)


if __name__ == "__main__":
    main()
