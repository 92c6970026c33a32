"""The app's key bindings: one list, which the footer, the help screen and the command palette all show.

Keys that step the next run's settings walk the ladders in :mod:`specviz.tui.settings_steps`; the
stream's own arrow keys (widgets/token_stream.py) call the same playhead actions. ``c`` (catch up)
exists only for a follower (``specviz follow``): the app switches it off, and out of the footer,
everywhere else.
"""

from __future__ import annotations

from textual.binding import Binding

KEYS: list[Binding] = [
    Binding("space", "toggle_play", "Play/Pause"),
    Binding("right,n", "step", "Step"),
    Binding("left,b", "step_back", "Back"),
    Binding(
        "c",
        "catch_up",
        "Catch up",
        tooltip="Catch up: back to the teacher's newest iteration, live (specviz follow; end does the same)",
    ),
    Binding("home", "first", "First iteration", show=False),
    Binding("end", "last", "Last iteration", show=False),
    Binding("j", "jump", "Jump to iteration", show=False),
    Binding("r", "run", "Run"),
    Binding("ctrl+r", "run", "Run", show=False, priority=True),
    Binding("x", "race", "Race"),
    Binding("y", "compare_rules", "Compare rules: lossless vs lossy", show=False),
    Binding("m", "toggle_mode", "Speculative/plain", show=False),
    Binding("g", "gamma(-1)", "γ −1", show=False),
    Binding("G", "gamma(1)", "γ +1", show=False),
    Binding("t", "temperature(-1)", "Temperature down", show=False),
    Binding("T", "temperature(1)", "Temperature up", show=False),
    Binding("k", "top_k(-1)", "Top-k down", show=False),
    Binding("K", "top_k(1)", "Top-k up (past 100: off)", show=False),
    Binding("u", "top_p(-1)", "Top-p down", show=False),
    Binding("U", "top_p(1)", "Top-p up (past 0.99: off)", show=False),
    Binding("l", "max_new_tokens(-1)", "Max new tokens down", show=False),
    Binding("L", "max_new_tokens(1)", "Max new tokens up", show=False),
    Binding("d", "drafter", "Next drafter", show=False),
    Binding("s", "seed(-1)", "Seed −1", show=False),
    Binding("S", "seed(1)", "Seed +1", show=False),
    Binding("M", "choose_models", "Choose models", show=False),
    Binding("minus", "speed(-1)", "Slower playback", show=False),
    Binding("plus,equals_sign", "speed(1)", "Faster playback", show=False),
    Binding("left_square_bracket", "cost_ratio(-0.05)", "Theory: c −0.05", show=False),
    Binding("right_square_bracket", "cost_ratio(0.05)", "Theory: c +0.05", show=False),
    Binding("o", "toggle_drafts", "Show/hide rejected drafts", show=False),
    Binding("i", "toggle_boundaries", "Show/hide iteration marks", show=False),
    Binding("w", "toggle_two_phase", "Step draft, then verify", show=False),
    Binding("p", "focus_prompt", "Edit prompt", show=False),
    Binding("escape", "focus_stream", "Leave prompt", show=False),
    Binding("e", "export", "Export"),
    Binding("1", "show_tab('stream')", "Stream view", show=False),
    Binding("2", "show_tab('charts')", "Charts view", show=False),
    Binding("3", "show_tab('theory')", "Theory view", show=False),
    Binding("4", "show_tab('race')", "Race view", show=False),
    Binding("5", "show_tab('lossy')", "Lossless vs lossy view", show=False),
    Binding("question_mark,f1", "help", "Help"),
    Binding("q", "quit", "Quit", show=False),
]
