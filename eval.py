"""Evaluate a checkpoint: ``python eval.py ckpt_path=<file> data=<config>``. See README.md."""

from aigc.eval import main

if __name__ == "__main__":
    main()
