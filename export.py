"""Export a checkpoint: ``python export.py ckpt_path=<file> output=<folder>``. See README.md."""

from aigc.export import main

if __name__ == "__main__":
    main()
