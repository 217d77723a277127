"""Train a model: ``python train.py model=gan data=mnist``. See README.md."""

from aigc.train import main

if __name__ == "__main__":
    main()
