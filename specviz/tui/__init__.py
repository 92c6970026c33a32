"""The specviz terminal UI.

The UI consumes :mod:`specviz.decoding.events` only; it never imports torch. Events come from an
:data:`~specviz.tui.source.EventSourceFactory` (a live decoder, or the deterministic fake in
:mod:`tests.support.fake_source`) or from a recorded trace. Entry points live in :mod:`specviz.tui.app`.
"""
