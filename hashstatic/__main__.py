"""``python -m hashstatic``: the same command as ``hashstatic``."""

from hashstatic.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
