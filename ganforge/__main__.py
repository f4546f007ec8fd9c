"""``python -m ganforge`` (used by torchrun) runs the CLI."""

from ganforge.cli import main

if __name__ == "__main__":
    main()
