"""Benchmark YesWorkflow extraction and recon against the least work each must do.

1. **Extract**: a generated annotated Python script (one workflow of 1,000 steps, each with a
   parameter, an input and an output with URI templates, between lines of code with strings)
   scanned, parsed and built into the model, then written as YW facts. Baseline: the
   standard library's ``tokenize`` listing the same file's comment tokens (a comment scan
   and nothing else).
2. **Recon**: 20,000 recorded paths matched against the templates of a 50-step workflow.
   Baseline: the same distinct templates as compiled regular expressions, each path tried
   against each, with no model, binding or bookkeeping.

The result line sums both parts; the detail lines give each part's own ratio.
"""

from __future__ import annotations

import argparse
import re
import tokenize
from pathlib import Path

import _common
from _common import best_alternating, detail, report, scratch_dir, timed

_common.use_source_tree()

from cairn.provenance.yw import extract_facts, load_model, model_facts  # noqa: E402
from cairn.provenance.yw.recon import FileRecord, reconstruct  # noqa: E402


def make_script(path: Path, steps: int) -> None:
    lines = ['"""Generated workflow.', "@begin big @desc A long pipeline.", "@in d0", '"""']
    for i in range(steps):
        lines += [
            f"# @begin step_{i} @desc Step number {i}.",
            "# @param year",
            f"# @in d{i} @uri file:data/{{year}}/part_{i}_{{n}}.csv",
            f"# @out d{i + 1} @as d{i + 1} @uri file:data/{{year}}/part_{i + 1}_{{n}}.csv",
            f'text_{i} = "a # not a comment @begin no"  # trailing remark',
            f"value_{i} = sum(range({i}))",
            f"# @end step_{i}",
        ]
    lines.append(f"# @out d{steps}")
    lines.append("# @end big")
    path.write_text("\n".join(lines) + "\n")


def comment_tokens(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for t in tokenize.tokenize(handle.readline) if t.type == tokenize.COMMENT)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--paths", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with scratch_dir() as tmp:
        big = tmp / "big.py"
        make_script(big, args.steps)
        small = tmp / "small.py"
        make_script(small, 50)
        lines = big.read_text().count("\n")

        def extract() -> float:
            def work() -> None:
                model = load_model([big])
                extract_facts(model)
                model_facts(model)

            return timed(work)

        ex_cairn, ex_base = best_alternating(
            extract, lambda: timed(lambda: comment_tokens(big)), rounds=args.rounds
        )
        detail(
            f"extract {lines} lines, {args.steps} steps: cairn {ex_cairn:.2f}s, "
            f"tokenize {ex_base:.2f}s, ratio {ex_cairn / ex_base:.2f}"
        )

        model = load_model([small])
        records = [
            FileRecord(f"data/{2000 + i % 20}/part_{i % 51}_{i}.csv", "output")
            for i in range(args.paths)
        ]
        distinct = {p.template.path for p in model.ports.values() if p.template}
        compiled = [re.compile(_regex(path)) for path in sorted(distinct)]

        def baseline() -> float:
            def work() -> None:
                for record in records:
                    for pattern in compiled:
                        pattern.fullmatch(record.path)

            return timed(work)

        rc_cairn, rc_base = best_alternating(
            lambda: timed(lambda: reconstruct(model, records)), baseline, rounds=args.rounds
        )
        detail(
            f"recon {args.paths} paths x {len(compiled)} templates: cairn {rc_cairn:.2f}s, "
            f"plain regex loop {rc_base:.2f}s, ratio {rc_cairn / rc_base:.2f}"
        )
        report("yw", ex_cairn + rc_cairn, ex_base + rc_base)


def _regex(path: str) -> str:
    parts = re.split(r"\{[^{}]*\}", path)
    return r"\S+?".join(re.escape(p) for p in parts)


if __name__ == "__main__":
    main()
