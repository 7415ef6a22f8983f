"""Test plugin: a trainer hook that records the calls it gets (see `hook.RecordCallsHook`)."""
