"""Shared fixtures of the engine tests: the toy model / data set module, loaded from its path."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOY_TRAINING_SCRIPT = Path(__file__).with_name("toy_training.py")


@pytest.fixture(scope="session")
def toy() -> ModuleType:
    """tests/engine/toy_training.py as a module (it is also run as a script by the SIGKILL test)."""
    if "toy_training" not in sys.modules:
        spec = importlib.util.spec_from_file_location("toy_training", TOY_TRAINING_SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["toy_training"] = module
        spec.loader.exec_module(module)
    return sys.modules["toy_training"]
