"""Time per stage against PCA + k-means, on the CPU and, where there is one, on a CUDA GPU.

For each cube, runs in fresh processes: PCA(10)+k-means with the true k (the
baseline every benchmark of the project is measured against), our pipeline
with ``device="cpu"`` and, when torch sees a CUDA device, ``device="cuda"``
(default settings otherwise, no previews). The table gives the total time,
the ratio to the baseline, the time of each stage (the GPU serves training
and the pass over every pixel, ``assign``; choosing k and refining fit
mixtures on the CPU) with, in brackets, the cores it kept busy (its CPU
seconds over its seconds: a stage near 1.0 on a machine of several cores
leaves them idle), the ARI against ground truth, and the ARI between the
CPU and GPU maps (1.000: the same partition).

Run with ``python benchmarks/run.py --suite stages [--stage-cubes nebula:40 painting:192:2048
stress/nebula/clean:160]`` (a stress variant at the size given: five or more classes).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass, replace

import numpy as np

from run import CubeSpec, _load, _method

STAGES = ("rest frame", "sample", "train", "choose k", "refine", "assign", "summarise")
#: Shortest stage (seconds) whose busy cores the table gives.
MIN_TIMED = 0.1


@dataclass
class StageRow:
    cube: str
    method: str
    k: int
    seconds: float
    timings: dict[str, float]
    cpu_timings: dict[str, float]
    labels: np.ndarray

    def stage(self, name: str) -> str:
        """The stage's seconds and, in brackets, the cores it kept busy; blank where it did not run.

        A stage shorter than :data:`MIN_TIMED` gets no cores: a clock tick is a
        large share of it.
        """
        if name not in self.timings:
            return ""
        seconds = self.timings[name]
        if seconds < MIN_TIMED:
            return f"{seconds:.2f}"
        return f"{seconds:.2f} ({self.cpu_timings[name] / seconds:.1f})"


def _worker(spec: CubeSpec, method: str, queue: mp.Queue) -> None:
    from napari_deepcube.core.config import SegmentConfig
    from napari_deepcube.core.pipeline import segment

    loaded = _load(spec)
    truth = loaded[1]
    start = time.perf_counter()
    if method == "PCA(10)+k-means":
        labels, k, _ = _method(method, spec, int(truth.max()), loaded)
        timings: dict[str, float] = {}
        cpu_timings: dict[str, float] = {}
    else:
        result = segment(loaded[0], SegmentConfig(seed=spec.seed, device=method, preview_every=0))
        labels, k, timings, cpu_timings = result.labels.ravel(), result.k, result.timings, result.cpu_timings
    queue.put((np.asarray(labels), k, time.perf_counter() - start, timings, cpu_timings))


def _run(spec: CubeSpec, method: str) -> StageRow:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_worker, args=(spec, method, queue))
    process.start()
    labels, k, seconds, timings, cpu_timings = queue.get()
    process.join()
    return StageRow(spec.name, method, k, seconds, timings, cpu_timings, labels)


def _spec(item: str) -> CubeSpec:
    """The cube ``family:size[:channels]`` or ``stress/<variant>:size``, named without its channels."""
    family, size, *channels = item.split(":")
    name = f"{family} {size}x{size}"
    if family.startswith("stress/"):
        if channels:
            raise ValueError(f"{item}: a stress variant has its own channels; give stress/<variant>:size")
        return CubeSpec(name, "stress", size=int(size), variant=family.removeprefix("stress/"))
    return CubeSpec(name, family, size=int(size), channels=int(channels[0]) if channels else None)


def stages(cubes: list[str]) -> list[StageRow]:
    """Run every cube named in ``cubes`` (see :func:`_spec`) on the CPU, and the GPU if any."""
    import torch
    from sklearn.metrics import adjusted_rand_score

    methods = ["PCA(10)+k-means", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    else:
        print("no CUDA device: CPU rows only")
    print(
        "| cube | method | k / true | ARI | vs CPU map | time (s) | x PCA+km | "
        + " | ".join(STAGES) + " |"
    )
    print("|---" * (7 + len(STAGES)) + "|", flush=True)
    rows = []
    for item in cubes:
        spec = _spec(item)
        cube, labels, _ = _load(spec)
        spec = replace(spec, name=f"{spec.name}x{cube.n_channels}")
        truth = labels.ravel()
        del cube  # each method's run loads its own, in its own process
        scored = truth > 0
        cube_rows = [_run(spec, method) for method in methods]
        baseline, on_cpu = cube_rows[0], cube_rows[1]
        for row in cube_rows:
            ari = adjusted_rand_score(truth[scored], row.labels[scored])
            agreement = adjusted_rand_score(on_cpu.labels[scored], row.labels[scored])
            stages = " | ".join(row.stage(name) for name in STAGES)
            print(
                f"| {row.cube} | {row.method} | {row.k} / {truth.max()} | {ari:.3f} | "
                f"{agreement:.3f} | {row.seconds:.1f} | {row.seconds / baseline.seconds:.1f} | {stages} |",
                flush=True,
            )
        rows += cube_rows
    return rows
