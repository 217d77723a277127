"""Sample from a checkpoint: ``python generate.py ckpt_path=<file>``. See README.md."""

from aigc.generate import main

if __name__ == "__main__":
    main()
