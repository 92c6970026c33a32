"""Lossless against lossy, side by side: the same prompt and seed under each acceptance rule.

The panel owns its comparison, as the race panel owns the race: a thread worker decodes the prompt
three times through the app's event source, with rejection sampling (lossless), the lab's threshold
rule (accept when the target's probability exceeds τ) and typical acceptance, posting one message
per event. The three outputs are shown one above the other, coloured as in the stream, with the
first token where each lossy output parts from the lossless one marked, and for each rule its
acceptance rate, tokens per target forward and the mean exact one-step TV distance from the target
(``Iteration.step_tv``: ~0 for rejection sampling, what the shortcut costs for the others).

Greedy decoding would show nothing: every rule reduces to argmax matching there and the outputs are
identical, so a greedy comparison runs at temperature 1.0 and says so. With sampling the outputs
can part through the random draws alone (the cut rules draw no uniforms, so their random streams
shift); the TV column, not the parting point, says whether a rule changes the distribution.

A replayed trace is shown as it was recorded when it holds lossy runs next to a lossless run of the
same prompt and seed; traces from before ``RunStarted.rule`` say only that a run was lossy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from specviz.decoding.events import Event, RunFinished
from specviz.decoding.settings import RuleName, RunSettings
from specviz.tui.live_decode import Post, TraceTarget, decode_runs
from specviz.tui.recording import Recording
from specviz.tui.source import EventSourceFactory
from specviz.tui.widgets.status_styles import STATUS_COMPONENT_CLASSES, STATUS_CSS
from specviz.tui.widgets.token_stream import iteration_pieces

RULES: tuple[RuleName, ...] = ("lossless", "threshold", "typical")
SLOTS = len(RULES)  # the lossless run and up to two lossy ones
# A mean one-step TV below this is float32 rounding (~3e-6 on a 152k vocabulary), not a rule's doing.
ROUNDING_TV = 1e-4
PARTED_GLYPH = "▸"

HOW_TO_RECORD = (
    "This trace holds no lossy run next to a lossless run of the same prompt and seed. To record "
    "one: specviz run --trace t.jsonl PROMPT, press y once the models are loaded, wait for the "
    "three runs, quit, then specviz replay t.jsonl."
)


@dataclass(frozen=True)
class ComparedRun:
    """One row of the comparison: a run and the rule it was decoded with."""

    name: str  # "rejection sampling", "threshold", "typical"; "lossy run 1" from a trace
    detail: str  # the rule's parameters, e.g. "τ=0.1, the lab's rule"; "" where unknown
    lossy: bool
    run: Recording

    @property
    def label(self) -> str:
        return f"{self.name} {self.detail}" if self.detail else self.name

    @property
    def kind(self) -> str:
        return "LOSSY" if self.lossy else "lossless"


def first_divergence(lossless: Sequence[int], other: Sequence[int], *, finished: bool = True) -> int | None:
    """Index of the first token where ``other`` parts from ``lossless``; None while they agree.

    Once both are ``finished``, one ending earlier parts at its end; before that, a shorter run
    that so far agrees has not parted (yet).
    """
    common = min(len(lossless), len(other))
    for i in range(common):
        if lossless[i] != other[i]:
            return i
    if finished and len(lossless) != len(other):
        return common
    return None


def mean_step_tv(run: Recording) -> float | None:
    """Mean of ``Iteration.step_tv`` over the iterations that recorded one (None: none did)."""
    values = [it.step_tv for it in run.iterations if it.step_tv is not None]
    return sum(values) / len(values) if values else None


def rule_name(rule: RuleName, settings: RunSettings) -> tuple[str, str]:
    """The name a rule is shown under, and its parameters."""
    if rule == "threshold":
        return "threshold", f"τ={settings.tau:g}, the lab's rule"
    if rule == "typical":
        return "typical", f"ε={settings.typical_epsilon:g} δ={settings.typical_delta:g}"
    return "rejection sampling", ""


def comparison_settings(settings: RunSettings) -> tuple[list[tuple[RuleName, RunSettings]], list[str]]:
    """The three runs' settings (same prompt and seed, one per rule) and what was changed to compare."""
    notes: list[str] = []
    base = settings
    if base.mode != "speculative":
        base = base.evolve(mode="speculative")
        notes.append("plain decoding has no acceptance rule: compared with speculative decoding")
    if base.tree:
        # A token tree is verified by rejection sampling only (RunSettings refuses a lossy rule).
        chain = "ngram" if base.drafter == "lookup-tree" else "model"
        base = base.evolve(drafter=chain)
        notes.append(
            f"{settings.drafter} drafts token trees, verified losslessly only: compared with --drafter {chain}"
        )
    if base.gamma == 0:
        base = base.evolve(gamma=4)
        notes.append("γ=0 drafts nothing for a rule to judge: compared at γ=4")
    if base.greedy:
        base = base.evolve(temperature=1.0)
        notes.append(
            "greedy (T=0): every rule reduces to argmax matching and the outputs are identical, "
            "so this compares at temperature 1.0"
        )
    return [(rule, base.evolve(rule=rule)) for rule in RULES], notes


def _recorded(run: Recording, i: int) -> ComparedRun:
    """A recorded lossy run, named by the rule its trace records (older traces do not)."""
    rule = run.started.rule if run.started is not None else None
    if rule is None:
        return ComparedRun(f"lossy run {i}", "rule not recorded", True, run)
    name, _, detail = rule.partition(" ")
    return ComparedRun(name, detail, True, run)


def recorded_comparison(runs: Sequence[Recording]) -> list[ComparedRun] | None:
    """From a trace's runs: the last lossless speculative run that has lossy runs of the same
    prompt and seed beside it, and (up to two, the last) of those; None when there is none."""
    started = [(r, r.started) for r in runs if r.started is not None and r.started.mode == "speculative"]
    keys = {id(r): (s.prompt_token_ids, s.seed, s.temperature, s.top_k, s.top_p) for r, s in started}
    for lossless in reversed([r for r, s in started if not s.lossy]):
        lossy = [r for r, s in started if s.lossy and keys[id(r)] == keys[id(lossless)]]
        if lossy:
            shown = lossy[-(SLOTS - 1) :]
            return [ComparedRun("rejection sampling", "", False, lossless)] + [
                _recorded(run, i) for i, run in enumerate(shown, 1)
            ]
    return None


class LossyPanel(Vertical):
    DEFAULT_CSS = (
        """
    LossyPanel {
        height: 1fr;
        #lossy-status { height: auto; padding: 0 1; background: $panel; }
        #lossy-runs { height: 1fr; background: $surface; }
        .lossy-title { height: auto; padding: 0 1; margin-top: 1; text-style: bold; }
        .lossy-title.-lossless { color: $text-success; }
        .lossy-title.-lossy { color: $text-warning; }
        .lossy-output { height: auto; padding: 0 1; }
        .-hidden { display: none; }
    }
    """
        + STATUS_CSS
        + """
    .lossy--parted { color: $text-error; text-style: bold reverse; }
    """
    )

    COMPONENT_CLASSES = STATUS_COMPONENT_CLASSES | {"lossy--parted"}

    class RuleEvent(Message, bubble=False):
        """One event of the run in ``slot`` of comparison ``compare_id`` (runs decode one by one)."""

        def __init__(self, compare_id: int, slot: int, event: Event) -> None:
            super().__init__()
            self.compare_id = compare_id
            self.slot = slot
            self.event = event

    class Ended(Message):
        """Comparison ``compare_id`` stopped decoding: all done, cancelled, or failed (``error``)."""

        def __init__(self, compare_id: int, error: str | None = None) -> None:
            super().__init__()
            self.compare_id = compare_id
            self.error = error

    def __init__(self, *, live: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self._live = live
        self._runs: list[ComparedRun] = []
        self._notes: list[str] = []
        self._compare_id = 0  # a cancelled comparison's late messages are ignored by id
        self._comparing = False
        self._status_text = ""
        self._styles: dict[str, Style] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="lossy-status")
        with VerticalScroll(id="lossy-runs"):
            for slot in range(SLOTS):
                yield Static(id=f"lossy-title-{slot}", classes="lossy-title -hidden", markup=False)
                yield Static(id=f"lossy-output-{slot}", classes="lossy-output -hidden", markup=False)

    def on_mount(self) -> None:
        if self._runs:
            self._draw_all()
        elif self._live:
            self._status(
                "Press y to decode this prompt and seed with each acceptance rule: rejection sampling "
                "(lossless), the lab's threshold rule (accept when target_prob > τ, LOSSY) and typical "
                "acceptance (LOSSY), shown one above the other."
            )
        else:
            self._status(HOW_TO_RECORD)

    # -- state ---------------------------------------------------------------------------------------

    @property
    def runs(self) -> list[ComparedRun]:
        """The compared runs, lossless first (still decoding while :attr:`comparing`)."""
        return list(self._runs)

    @property
    def comparing(self) -> bool:
        """The worker is decoding the runs."""
        return self._comparing

    @property
    def notes(self) -> list[str]:
        """What was changed from the settings to compare (e.g. greedy → temperature 1.0)."""
        return list(self._notes)

    @property
    def status_text(self) -> str:
        return self._status_text

    def mean_tv(self, slot: int) -> float | None:
        """Mean exact one-step TV of run ``slot`` (see :func:`mean_step_tv`), as shown."""
        return mean_step_tv(self._runs[slot].run)

    def divergence(self, slot: int) -> int | None:
        """First token where run ``slot`` parts from the lossless run (slot 0); None: not (yet)."""
        lossless, other = self._runs[0].run, self._runs[slot].run
        done = lossless.finished is not None and other.finished is not None
        return first_divergence(_tokens(lossless), _tokens(other), finished=done)

    # -- decoding ------------------------------------------------------------------------------------

    def show_recorded(self, runs: Sequence[Recording]) -> bool:
        """Show a comparison a trace holds (see :func:`recorded_comparison`); False if it holds none."""
        compared = recorded_comparison(runs)
        if compared is None:
            return False
        self._runs, self._notes = compared, []
        if self.is_mounted:
            self._draw_all()
        return True

    def start(self, factory: EventSourceFactory, settings: RunSettings, trace: TraceTarget | None) -> None:
        """Decode ``settings``' prompt and seed once per rule, lossless first."""
        self.cancel()
        self._compare_id += 1
        self._comparing = True
        runs, self._notes = comparison_settings(settings)
        self._runs = [ComparedRun(*rule_name(rule, s), rule != "lossless", Recording()) for rule, s in runs]
        self._draw_all()
        self._decode(self._compare_id, factory, [s for _, s in runs], trace)

    def cancel(self) -> None:
        """Stop decoding (a live run or a race takes over the decoder); what was decoded stays shown."""
        self._compare_id += 1
        was_comparing, self._comparing = self._comparing, False
        self.workers.cancel_group(self, "lossy")
        if was_comparing and self.is_mounted:
            self._draw_status()

    @work(thread=True, exclusive=True, group="lossy", exit_on_error=False)
    def _decode(
        self,
        compare_id: int,
        factory: EventSourceFactory,
        settings: list[RunSettings],
        trace: TraceTarget | None,
    ) -> None:
        worker = get_current_worker()

        def poster(slot: int) -> Post:
            return lambda event: self.post_message(self.RuleEvent(compare_id, slot, event))

        runs = [(s, poster(slot)) for slot, s in enumerate(settings)]
        error = decode_runs(factory, runs, lambda: worker.is_cancelled, trace=trace)
        self.post_message(self.Ended(compare_id, error))

    @on(RuleEvent)
    def _rule_event(self, message: RuleEvent) -> None:
        if message.compare_id != self._compare_id or message.slot >= len(self._runs):
            return
        self._runs[message.slot].run.add(message.event)
        if isinstance(message.event, RunFinished) and message.slot == len(self._runs) - 1:
            self._comparing = False
        self._draw_run(message.slot)  # runs decode in turn, lossless first: the others wait for it
        self._draw_status()

    @on(Ended)
    def _ended(self, message: Ended) -> None:
        if message.compare_id != self._compare_id:
            message.stop()  # a cancelled comparison: nothing for the app to report
            return
        self._comparing = False
        self._draw_status()

    # -- drawing -------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        if self.is_mounted and self._runs:
            for slot in range(len(self._runs)):
                self._draw_run(slot)

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.get_component_rich_style(name, partial=True)
            self._styles[name] = style
        return style

    def _draw_all(self) -> None:
        for slot in range(SLOTS):
            shown = slot < len(self._runs)
            self.query_one(f"#lossy-title-{slot}", Static).set_class(not shown, "-hidden")
            self.query_one(f"#lossy-output-{slot}", Static).set_class(not shown, "-hidden")
            if shown:
                self._draw_run(slot)
        self._draw_status()

    def _draw_run(self, slot: int) -> None:
        compared = self._runs[slot]
        run = compared.run
        parted = self.divergence(slot) if slot > 0 else None
        title = self.query_one(f"#lossy-title-{slot}", Static)
        title.set_class(not compared.lossy, "-lossless")
        title.set_class(compared.lossy, "-lossy")
        title.update(Text(self._title(slot, parted)))
        self.query_one(f"#lossy-output-{slot}", Static).update(self._output(run, parted))

    def _title(self, slot: int, parted: int | None) -> str:
        compared = self._runs[slot]
        run, stats = compared.run, compared.run.stats()
        parts = [f"{compared.label} ({compared.kind})", f"{stats.committed} tokens"]
        rate, per_forward = stats.acceptance_rate, stats.mean_accepted_length
        parts.append("acceptance –" if rate is None else f"acceptance {rate:.0%}")
        parts.append("– tokens/forward" if per_forward is None else f"{per_forward:.2f} tokens/forward")
        parts.append(f"mean one-step TV {tv_text(mean_step_tv(run))}")
        if slot > 0:
            parts.append(self._parting(slot, parted))
        if run.finished is None and run.started is not None and self._comparing:
            parts.append("decoding…")
        return " · ".join(parts)

    def _parting(self, slot: int, parted: int | None) -> str:
        lossless, run = self._runs[0].run, self._runs[slot].run
        if parted is None:
            done = lossless.finished is not None and run.finished is not None
            return "identical to the lossless output" if done else "no parting yet"
        mine, theirs = _tokens(run), _tokens(lossless)
        here = _token_text(run, mine, parted)
        there = _token_text(lossless, theirs, parted)
        return f"{PARTED_GLYPH} parts from lossless at token {parted}: {here} where lossless has {there}"

    def _output(self, run: Recording, parted: int | None) -> Text:
        """The run's committed tokens styled as in the stream, the parting token marked."""
        text = Text()
        token = 0
        for index, it in enumerate(run.iterations):
            for piece in iteration_pieces(it, index, show_drafts=False, show_boundaries=False):
                style = self._style(f"status--{piece.status}")
                if token == parted:
                    marked = self._style("lossy--parted")
                    text.append(PARTED_GLYPH, marked)
                    style = style + marked
                text.append(piece.text, style)
                token += 1
        if parted is not None and parted >= token:  # parted by ending: mark where it ended
            text.append(f"{PARTED_GLYPH}(end)", self._style("lossy--parted"))
        return text

    def _draw_status(self) -> None:
        if not self._runs:
            return
        lines: list[str] = []
        if self._comparing:
            current = next((c for c in self._runs if c.run.finished is None), self._runs[-1])
            slot = self._runs.index(current) + 1
            lines.append(f"decoding {current.label} ({slot}/{len(self._runs)})…")
        elif any(c.run.finished is None for c in self._runs):
            lines.append(
                "Stopped before every rule's run was decoded (a new run or race took the decoder, or "
                "decoding failed): press y to compare again."
                if self._live
                else "A recorded run was cut short: this compares what was decoded."
            )
        else:
            lines.append(self._summary())
        lines.extend(f"note: {note}" for note in self._notes)
        self._status("\n".join(lines))

    def _summary(self) -> str:
        started = self._runs[0].run.started
        lines = []
        if started is not None:
            lines.append(
                f"Same prompt and seed ({started.seed}), T={started.temperature:g}, γ={started.gamma}."
            )
        lossless_tv = mean_step_tv(self._runs[0].run)
        if lossless_tv is None:
            lines.append(
                "No one-step TV was recorded (greedy runs, or a trace older than schema 2): "
                "compare the outputs only."
            )
            return "\n".join(lines)
        lines.append(
            f"Mean exact one-step TV from the target: rejection sampling {tv_text(lossless_tv)}, "
            "lossless (rounding only)."
        )
        lossy = [(c.name, mean_step_tv(c.run)) for c in self._runs[1:]]
        listed = ", ".join(f"{name} {tv_text(tv)}" for name, tv in lossy)
        if all(tv is not None and tv >= ROUNDING_TV for _, tv in lossy):
            lines.append(f"{listed}: LOSSY, not 0: the shortcut changes what the model writes.")
        else:
            lines.append(
                f"{listed}: a lossy rule reads ≈0 only where it happens to match the target here "
                "(e.g. a τ above every target probability keeps no draft and emits the target's row)."
            )
        lines.append(
            "Outputs can also part through the random draws alone: the TV, not where they part, "
            "says whether a rule is lossy."
        )
        return "\n".join(lines)

    def _status(self, text: str) -> None:
        self._status_text = text
        self.query_one("#lossy-status", Static).update(Text(text))


def _tokens(run: Recording) -> tuple[int, ...]:
    return run.token_ids(len(run))


def _token_text(run: Recording, tokens: Sequence[int], index: int) -> str:
    if index >= len(tokens):
        return "the end"
    text = run.token_text(tokens[index])
    return json.dumps(text if text is not None else f"<{tokens[index]}>", ensure_ascii=False)


def tv_text(value: float | None) -> str:
    """A mean one-step TV as shown: rounding-sized values read as ≈0, with their size."""
    if value is None:
        return "–"
    return f"≈0 ({value:.0e})" if value < ROUNDING_TV else f"{value:.3f}"
