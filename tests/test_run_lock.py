"""One run per run directory: a second run in a directory in use is refused with one line, and a
killed run's lock does not block its resume."""

import fcntl
from pathlib import Path

from conftest import TINY_GAN, run_train_cli


def tiny_cli_run(run_dir: Path, data_dir: Path):
    return run_train_cli(
        "data=mnist",
        *TINY_GAN,
        "debug=fdr",
        "logger=none",
        f"hydra.run.dir={run_dir}",
        data_dir=data_dir,
        cwd=run_dir.parent,
    )


def test_a_second_run_in_a_directory_in_use_is_refused(tmp_path: Path, tiny_mnist: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / ".lock", "a+") as lock:  # a run in progress holds the lock
        lock.write("process 4242 on trainer-1 since 2026-11-29 09:00:00\n")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = tiny_cli_run(run_dir, tiny_mnist)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: the run directory {run_dir} is in use by process 4242 on trainer-1 since "
        "2026-11-29 09:00:00; give this run another hydra.run.dir, or wait for that one to end"
    ]
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # nothing of it was written


def test_the_lock_of_a_killed_run_does_not_block_its_resume(
    tmp_path: Path, tiny_mnist: Path
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").write_text("process 4242 on trainer-1 since 2026-11-29 09:00:00\n")
    result = tiny_cli_run(run_dir, tiny_mnist)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / ".lock").read_text().startswith("process ")
    assert "4242" not in (run_dir / ".lock").read_text()
    # A finished run says where its outputs are and how to use them.
    log = (run_dir / "train.log").read_text()
    assert f"Finished. Run directory: {run_dir}" in log
    assert f"python generate.py ckpt_path={run_dir}" in log
    assert f"python export.py ckpt_path={run_dir} output={run_dir / 'export'}" in log
    assert f"hydra.run.dir={run_dir} ckpt_path=last" in log
