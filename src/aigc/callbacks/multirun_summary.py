"""A table of every job's final metrics at the end of a Hydra multirun."""

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from aigc.paths import METRICS_FILE

log = logging.getLogger(__name__)


class MultirunSummary(Callback):
    """After ``python train.py -m ...``, prints one row per job and writes ``summary.csv``.

    Rows hold the overrides that differ between jobs and the job's final validation and test
    metrics (its ``metrics.json``; every metric when it has no validation or test ones), best
    ``optimized_metric`` first. It reads the jobs' directories, so it also works when a launcher
    ran the jobs on other machines.
    """

    def __init__(self, filename: str = "summary.csv") -> None:
        self.filename = filename

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        job_dirs = sorted(path.parents[1] for path in sweep_dir.glob("*/.hydra/overrides.yaml"))
        jobs = [_read_job(job_dir) for job_dir in job_dirs]
        if not jobs:
            return
        jobs.sort(key=lambda job: _sort_key(job, config.get("optimized_metric")))
        # Overrides that all jobs share say nothing about one job (unless there is only one).
        common = (
            set.intersection(*(set(job["overrides"]) for job in jobs)) if len(jobs) > 1 else set()
        )
        metric_names = _metric_columns(jobs, config.get("optimized_metric"))
        header = ["job", "overrides", *metric_names]
        rows = [
            [
                job["num"],
                " ".join(o for o in job["overrides"] if o not in common),
                *(_format(job["metrics"].get(name)) for name in metric_names),
            ]
            for job in jobs
        ]
        with open(sweep_dir / self.filename, "w", newline="") as file:
            csv.writer(file).writerows([header, *rows])
        log.info("Multirun summary (%s):\n%s", sweep_dir / self.filename, _table([header, *rows]))


def _read_job(job_dir: Path) -> dict[str, Any]:
    metrics_path = job_dir / METRICS_FILE
    return {
        "num": job_dir.name,
        "overrides": list(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")),
        # A job that failed or is still running has no metrics file yet.
        "metrics": json.loads(metrics_path.read_text()) if metrics_path.is_file() else {},
    }


def _sort_key(job: dict[str, Any], metric: str | None) -> tuple:
    value = job["metrics"].get(metric, math.inf) if metric else math.inf
    number = int(job["num"]) if job["num"].isdigit() else math.inf
    return (value, number)


def _metric_columns(jobs: list[dict[str, Any]], optimized: str | None) -> list[str]:
    names = sorted({name for job in jobs for name in job["metrics"]})
    final = [name for name in names if name.startswith(("val/", "test/"))] or names
    if optimized in names:
        final = [optimized, *(name for name in final if name != optimized)]
    return final


def _format(value: float | None) -> str:
    return "failed" if value is None else f"{value:.4g}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(*rows, strict=True)]
    lines = (
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)
