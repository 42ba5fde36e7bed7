from __future__ import annotations

import sys
from pathlib import Path

# the example tests share tests/examples/helpers.py
sys.path.insert(0, str(Path(__file__).resolve().parent))
