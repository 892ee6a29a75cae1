"""`python -m tollhouse` runs the command line, like the `tollhouse` script."""

from tollhouse.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
