"""``python -m cynet ...``: the same command line as ``cynet ...``."""
from .cli import main

if __name__ == "__main__":
    main()
