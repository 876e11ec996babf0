"""Ablation of one modelling rule: ours, with default settings, on the cubes every rule is judged by.

Run it in a checkout with the rule and in one without (``PYTHONPATH=<checkout>/src``),
then compare the two tables::

    PYTHONPATH=../without/src python benchmarks/ablation.py run without.tsv
    python benchmarks/ablation.py run with.tsv
    python benchmarks/ablation.py compare without.tsv with.tsv

The cubes: the stress suite's variants on seeds 0..``--seeds``-1, the hard
paintings' 10 seeds, the hard nebula's seeds 0-4 and Jasper Ridge (when
../shared/data exists). Each line of a table is one cube: its name, the k
chosen, the true k, the ARI, the training epochs, the training and total
seconds. A run appends to its table and skips the cubes already in it, so an
interrupted run goes on where it stopped. ARI does not depend on the machine
being idle; the times do.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from run import SHARED_DATA, CubeSpec, _load

COLUMNS = ("cube", "k", "true k", "ARI", "epochs", "train s", "total s")


def cubes(n_seeds: int) -> list[CubeSpec]:
    """The cubes of an ablation, in the order they run."""
    from stress import VARIANTS

    specs = [
        CubeSpec(f"{variant} s{seed}", "stress", seed=seed, variant=variant)
        for seed in range(n_seeds)
        for variant in VARIANTS
    ]
    specs += [CubeSpec(f"hard painting s{seed}", "painting", seed=seed, hard=True) for seed in range(10)]
    specs += [CubeSpec(f"hard nebula s{seed}", "nebula", seed=seed, hard=True) for seed in range(5)]
    if SHARED_DATA.is_dir():
        specs.append(CubeSpec("jasper ridge (real)", "jasper"))
    return specs


def run(table: Path, n_seeds: int) -> None:
    """Segment every cube not yet in ``table`` and append its line."""
    from sklearn.metrics import adjusted_rand_score

    from napari_deepcube.core.config import SegmentConfig
    from napari_deepcube.core.pipeline import segment

    done = {line.split("\t")[0] for line in table.read_text().splitlines()} if table.exists() else set()
    for spec in cubes(n_seeds):
        if spec.name in done:
            continue
        cube, truth, _ = _load(spec)
        start = time.perf_counter()
        result = segment(cube, SegmentConfig(seed=spec.seed, preview_every=0))
        seconds = time.perf_counter() - start
        truth = truth.ravel()
        scored = truth > 0
        ari = adjusted_rand_score(truth[scored], result.labels.ravel()[scored])
        values = (
            spec.name, result.k, int(truth.max()), f"{ari:.4f}", len(result.history),
            f"{result.timings.get('train', 0.0):.2f}", f"{seconds:.1f}",
        )
        with table.open("a") as out:
            out.write("\t".join(str(value) for value in values) + "\n")
        print("\t".join(str(value) for value in values), flush=True)


def _family(cube: str) -> str:
    if "/" in cube:
        return "stress " + cube.split("/")[0]
    return cube.rsplit(" s", 1)[0]


def compare(without: Path, with_rule: Path) -> None:
    """Per family of cubes in both tables: mean ARI, true k hits and mean epochs, without -> with."""
    tables = [
        {fields[0]: fields for fields in (line.split("\t") for line in path.read_text().splitlines())}
        for path in (without, with_rule)
    ]
    common = [cube for cube in tables[0] if cube in tables[1]]
    print("| cubes | ARI without -> with | true k without -> with | mean epochs without -> with |")
    print("|---|---|---|---|")
    families: dict[str, list[str]] = {}
    for cube in common:
        families.setdefault(_family(cube), []).append(cube)
    for family, names in [*families.items(), ("all", common)]:
        ari = [np.mean([float(table[name][3]) for name in names]) for table in tables]
        hits = [sum(table[name][1] == table[name][2] for name in names) for table in tables]
        epochs = [np.mean([float(table[name][4]) for name in names]) for table in tables]
        print(
            f"| {family} ({len(names)}) | {ari[0]:.3f} -> {ari[1]:.3f} | {hits[0]} -> {hits[1]} "
            f"| {epochs[0]:.1f} -> {epochs[1]:.1f} |"
        )
    changed = [cube for cube in common if tables[0][cube][1] != tables[1][cube][1]]
    print(f"\nk changed on {len(changed)} of {len(common)} cubes: {', '.join(changed) or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    running = commands.add_parser("run", help="segment the cubes, appending to TABLE")
    running.add_argument("table", type=Path)
    running.add_argument("--seeds", type=int, default=2, help="stress seeds per variant")
    comparing = commands.add_parser("compare", help="compare two tables")
    comparing.add_argument("without", type=Path)
    comparing.add_argument("with_rule", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.table, args.seeds)
    else:
        compare(args.without, args.with_rule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
