"""One Markdown table of the scorecard of several checkpoints, each scored by eval.py's own code.

    python scripts/scorecard.py logs/mnist_dcgan/runs/<run> logs/mnist_cdcgan/runs/<run> \
        -- data=mnist image.feature_ckpt=<classifier checkpoint>
    python scripts/scorecard.py logs/mnist_ddpm/runs/<run> --settings \
        "sampling.sampler=ddim sampling.steps=50" "sampling.sampler=dpm_solver sampling.steps=10" \
        -- data=mnist image.feature_ckpt=<classifier checkpoint> sampling.num_samples=1000

Everything after ``--`` is an eval.py override, the same for every checkpoint. ``--settings``
scores each checkpoint once per quoted group of further overrides (a sampler and its steps, a
guidance scale, ...), a row each. Each row's scores are also written next to its checkpoint
(metrics.json as eval.py writes it, or metrics-<settings>.json); ``--reuse`` reads those instead
of scoring again.
"""

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aigc.core.checkpoints import checkpoint_file, load_checkpoint
from aigc.errors import exit_on_user_error
from aigc.eval import evaluate, output_path
from aigc.paths import CONFIG_DIR, METRICS_FILE

# Columns in this order when any checkpoint has them; the rest follow.
COLUMNS = [
    "fid",
    "kid_mean",
    "is_mean",
    "precision",
    "recall",
    "density",
    "coverage",
    "conditional_accuracy",
    "intra_fid",
    "heldout/fid",
    "heldout/conditional_accuracy",
    "heldout/intra_fid",
    "seconds_per_image",
    "loss",
    "perplexity",
    "bpc",
    "bpb",
]
LEFT_OUT = {"kid_std", "is_std", "feature_network", "samples", "inception_fid", "tokens"}
# Of the scores on held-out prompts, the table keeps those in COLUMNS (the rest are in each
# checkpoint's metrics.json).
HELDOUT = "heldout/"


def describe(ckpt: Path) -> str:
    """The model in a few words: its run's task name, family and conditioning."""
    checkpoint = load_checkpoint(ckpt)
    family = checkpoint["aigc_model_class"].rsplit(".", 1)[-1]
    conditioning = checkpoint["hyper_parameters"].get("conditioning")
    run_config = ckpt.parents[1] / ".hydra" / "config.yaml"  # <run>/checkpoints/<file>.ckpt
    task = OmegaConf.load(run_config).task_name if run_config.is_file() else ckpt.parents[1].name
    return f"{task} ({family}{', ' + conditioning if conditioning else ''})"


def scores(ckpt: str, overrides: list[str], settings: str, reuse: bool) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", [f"ckpt_path={ckpt}", *overrides, *shlex.split(settings)])
    path = output_path(cfg)
    if settings:  # metrics-sampling.sampler=ddim_sampling.steps=50.json
        slug = re.sub(r"[^\w.=-]+", "_", settings)
        path = path.with_name(f"{path.stem}-{slug}{path.suffix}")
    if reuse and path.is_file():
        return json.loads(path.read_text())
    results = exit_on_user_error(lambda: evaluate(cfg))
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def table(rows: dict[str, dict]) -> str:
    names = {name for results in rows.values() for name in results} - LEFT_OUT
    names -= {name for name in names if name.startswith(HELDOUT) and name not in COLUMNS}
    columns = [c for c in COLUMNS if c in names] + sorted(names - set(COLUMNS))
    lines = [
        "| model | samples | " + " | ".join(columns) + " |",
        "| --- | --- |" + " --- |" * len(columns),
    ]
    for model, results in rows.items():
        cells = [_format(results.get(column)) for column in columns]
        lines.append(f"| {model} | {results.get('samples', '')} | " + " | ".join(cells) + " |")
    networks = {results.get("feature_network") for results in rows.values()} - {None}
    if networks:
        lines.append(f"\nImage scores in the feature space of {', '.join(sorted(networks))}.")
    return "\n".join(lines)


def _format(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoints", nargs="+", help="checkpoint files or run directories")
    parser.add_argument("--reuse", action="store_true", help=f"read an existing {METRICS_FILE}")
    parser.add_argument(
        "--settings",
        nargs="+",
        default=[""],
        help='a row per checkpoint and quoted group of eval.py overrides: "sampling.steps=10"',
    )
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, overrides = parser.parse_args(argv[:split]), argv[split + 1 :]
    rows = {}
    for ckpt in args.checkpoints:
        name = describe(exit_on_user_error(lambda c=ckpt: checkpoint_file(c)))
        for settings in args.settings:
            rows[f"{name} {settings}".strip()] = scores(ckpt, overrides, settings, args.reuse)
    print(table(rows))


if __name__ == "__main__":
    main()
