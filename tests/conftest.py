from __future__ import annotations

import sys
from pathlib import Path

# tests import their sibling helper modules (tv_fixtures, ...) by name
for folder in Path(__file__).parent.iterdir():
    if folder.is_dir() and folder.name != "__pycache__":
        sys.path.insert(0, str(folder))
