from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests import their sibling helper modules (tv_fixtures, ...) by name
for folder in Path(__file__).parent.iterdir():
    if folder.is_dir() and folder.name != "__pycache__":
        sys.path.insert(0, str(folder))


RECORDING_HOOK_PACKAGE = Path(__file__).parent / "plugins" / "recording_hook"


@pytest.fixture(scope="session")
def recording_hook_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Make tests/plugins/recording_hook importable and its `plugrcnn.hooks` entry point visible.

    The way pip would: the package folder plus a ``*.dist-info`` (entry_points.txt written from the
    package's own pyproject.toml) on ``sys.path``. Returns those paths (for a subprocess's
    PYTHONPATH); none if the package is pip-installed already.
    """
    import importlib
    import re
    from importlib import metadata

    if any(ep.name == "record_calls" for ep in metadata.entry_points(group="plugrcnn.hooks")):
        return []
    # the entry points as the package declares them (no tomllib: Python 3.10 is supported)
    pyproject = (RECORDING_HOOK_PACKAGE / "pyproject.toml").read_text()
    section = pyproject.split('[project.entry-points."plugrcnn.hooks"]')[1].split("\n[")[0]
    lines = [f"{name} = {value}" for name, value in re.findall(r'^(\w+) = "([^"]+)"', section, re.M)]
    assert lines, "tests/plugins/recording_hook/pyproject.toml declares no plugrcnn.hooks entry point"
    site = tmp_path_factory.mktemp("recording_hook_site")
    info = site / "plugrcnn_test_recording_hook-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugrcnn-test-recording-hook\n"
                                   "Version: 0.0.1\n")
    (info / "entry_points.txt").write_text("[plugrcnn.hooks]\n" + "\n".join(lines) + "\n")
    paths = [str(site), str(RECORDING_HOOK_PACKAGE)]
    sys.path[:0] = paths
    importlib.invalidate_caches()
    return paths
