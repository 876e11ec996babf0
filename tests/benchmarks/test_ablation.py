"""The ablation tables of benchmarks/ablation.py: the cubes, a real run's line, and the comparison."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from ablation import compare, cubes, run
from stress import VARIANTS


def test_the_cubes_are_every_stress_variant_per_seed_and_the_hard_families():
    names = [spec.name for spec in cubes(2)]
    assert len(set(names)) == len(names)
    assert sum(name.endswith(" s1") and "/" in name for name in names) == len(VARIANTS)
    assert sum(name.startswith("hard painting") for name in names) == 10
    assert sum(name.startswith("hard nebula") for name in names) == 5


def test_a_run_goes_on_where_the_table_stopped(tmp_path):
    table = tmp_path / "with.tsv"
    every = cubes(1)
    # Every cube but the first is already in the table: only the first is segmented.
    table.write_text("".join(f"{spec.name}\t2\t2\t1.0\t3\t0.1\t1.0\n" for spec in every[1:]))
    run(table, 1)
    lines = table.read_text().splitlines()
    assert len(lines) == len(every)
    name, k, true_k, ari, epochs, _, _ = lines[-1].split("\t")
    assert name == every[0].name and int(k) >= 2 and int(true_k) >= 2
    assert 0.0 <= float(ari) <= 1.0 and int(epochs) >= 1


def test_the_comparison_reads_each_family_and_names_the_cubes_whose_k_changed(tmp_path, capsys):
    without, with_rule = tmp_path / "without.tsv", tmp_path / "with.tsv"
    without.write_text("painting/clean s0\t7\t7\t1.0\t30\t9\t18\nhard painting s4\t7\t7\t0.946\t40\t6\t30\n")
    with_rule.write_text(
        "painting/clean s0\t7\t7\t1.0\t10\t3\t12\nhard painting s4\t6\t7\t0.797\t13\t4\t20\n"
    )
    compare(without, with_rule)
    printed = capsys.readouterr().out
    assert "| stress painting (1) | 1.000 -> 1.000 | 1 -> 1 | 30.0 -> 10.0 |" in printed
    assert "| hard painting (1) | 0.946 -> 0.797 | 1 -> 0 | 40.0 -> 13.0 |" in printed
    assert "k changed on 1 of 2 cubes: hard painting s4" in printed
