"""The UI on the model-free fake source, at its simulated pace: ``python -m specviz.tui.demo``.

For trying the keys without downloading a model; the numbers are synthetic.
"""

from __future__ import annotations

from specviz.tui.app import run_live
from specviz.tui.fake_source import FakeSource
from specviz.tui.source import RunSettings


def main() -> None:
    settings = RunSettings(
        prompt="Explain speculative decoding.", gamma=4, temperature=0.7, max_new_tokens=200
    )
    run_live(FakeSource(delay_scale=1.0), settings, autorun=True)


if __name__ == "__main__":
    main()
