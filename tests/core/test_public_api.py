"""plugrcnn.heads is the one module a head plugin imports; it imports without a cycle."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_built_in_plugins_import_only_plugrcnn_heads() -> None:
    pattern = re.compile(r"^\s*(?:from|import)\s+(plugrcnn(?:\.\w+)*)(?!\w)", re.MULTILINE)
    found = {}
    for path in sorted(ROOT.glob("plugins/*/plugrcnn_*/*.py")):
        modules = set(pattern.findall(path.read_text()))
        found[path.relative_to(ROOT).as_posix()] = modules - {"plugrcnn.heads"}
    assert len(found) >= 15  # every plugin module was read
    assert {path: mods for path, mods in found.items() if mods} == {}


def test_public_api_imports_first_in_a_fresh_interpreter_in_either_order() -> None:
    for first, second in (("plugrcnn.heads", "plugrcnn.plugins"), ("plugrcnn.plugins", "plugrcnn.heads"),
                          ("plugrcnn.heads.base", "plugrcnn.testing")):
        code = f"import {first}, {second}; import plugrcnn.heads as h; print(len(h.__all__))"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert int(run.stdout) >= 20


def test_the_contract_modules_do_not_import_each_other_in_a_circle() -> None:
    heads = ROOT / "core" / "plugrcnn" / "heads"
    # spec.py (the records) imports no other contract module at run time; base.py builds on it
    spec_imports = re.findall(r"^from (plugrcnn\.\S+) import", (heads / "spec.py").read_text(), re.MULTILINE)
    assert spec_imports == []
    assert "plugrcnn.plugins" not in (heads / "base.py").read_text()
