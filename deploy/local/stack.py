#!/usr/bin/env python3
"""Entry point for the local stack launcher (see deploy/local/dlstack/)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dlstack.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
