"""The plugin manager fails fast and names the culprit."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from plugrcnn.errors import PlugrcnnError
from plugrcnn.plugins import HeadSpec, hookimpl
from plugrcnn.plugins.manager import load_heads


def _spec_plugin(name: str) -> SimpleNamespace:
    @hookimpl
    def plugrcnn_register_heads():
        yield HeadSpec(name=name, config_class=dict, build=lambda cfg, ctx: None)

    return SimpleNamespace(plugrcnn_register_heads=plugrcnn_register_heads)


def test_installed_heads_are_found_through_entry_points() -> None:
    registry = load_heads(["class", "box"])
    assert set(registry.heads) >= {"class", "box"}
    assert registry.heads["box"].distribution == "plugrcnn-box"
    assert registry.spec("box").requires == ("class",)


def test_head_not_installed_names_the_head_and_the_pip_command() -> None:
    with pytest.raises(PlugrcnnError, match=r"head 'polygon' .*model\.heads\.polygon.*pip install plugrcnn-polygon"):
        load_heads(["class", "polygon"])


def test_two_plugins_claiming_one_head_name_both() -> None:
    with pytest.raises(PlugrcnnError, match=r"head 'dup' is registered by both '(one|two)' and '(one|two)'"):
        load_heads([], extra_plugins=[("one", _spec_plugin("dup")), ("two", _spec_plugin("dup"))])


def test_a_misspelled_hook_implementation_is_an_error_naming_the_plugin() -> None:
    @hookimpl
    def plugrcnn_register_head():  # missing "s"
        return []

    plugin = SimpleNamespace(plugrcnn_register_head=plugrcnn_register_head)
    with pytest.raises(PlugrcnnError, match=r"plugin 'typo'.*plugrcnn_register_head"):
        load_heads([], extra_plugins=[("typo", plugin)])


def test_each_manager_is_fresh() -> None:
    a = load_heads([], extra_plugins=[("x", _spec_plugin("only_in_a"))])
    b = load_heads([])
    assert "only_in_a" in a.heads and "only_in_a" not in b.heads
