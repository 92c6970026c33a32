"""Headless output: the token stream marked per iteration, and a summary table (rich).

Every status has a text attribute as well as a colour, so it reads under NO_COLOR:
accepted = plain green, rejected = red strike-through, resampled = yellow underline,
bonus = cyan bold underline, a plain target step (plain decoding, or an iteration that drafted
nothing, which version 1 traces call a bonus) = default.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted
from specviz.decoding.stats import correction_kind

STYLES = {
    "accepted": "green",
    "rejected": "red strike dim",
    "resampled": "yellow underline",
    "bonus": "cyan bold underline",
    "plain": "",
}


def legend() -> Text:
    text = Text("legend: ")
    for name in ("accepted", "rejected", "resampled", "bonus"):
        text.append(name, style=STYLES[name])
        text.append("  ")
    text.append("plain step (nothing drafted)", style=STYLES["plain"])
    return text


def iteration_text(it: Iteration, show_rejected: bool = True) -> Text:
    """The tokens an iteration committed, with the rejected draft struck through before its replacement."""
    text = Text()
    committed = len(it.new_token_ids)
    for d in it.drafted[:committed]:
        if d.verdict == "accepted":
            text.append(d.text, style=STYLES["accepted"])
        elif d.verdict == "rejected" and show_rejected:
            text.append(d.text, style=STYLES["rejected"])
    if it.correction.committed:
        text.append(it.correction.text, style=STYLES[correction_kind(it)])
    return text


class StreamPrinter:
    """Consumes events and prints the stream as it is decoded."""

    def __init__(self, console: Console, show_rejected: bool = True) -> None:
        self.console = console
        self.show_rejected = show_rejected

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            mode = (
                f"{event.drafter} drafter, γ={event.gamma}"
                if event.mode == "speculative"
                else "plain decoding"
            )
            self.console.print(
                Text.assemble(
                    (f"{event.target}", "bold"),
                    f"  {mode}  T={event.temperature:g}  seed={event.seed}  {event.device}/{event.dtype}",
                ),
            )
            if event.lossy:
                self.console.print(
                    Text(
                        "LOSSY acceptance rule: the output is NOT distributed as the target's",
                        style="bold red reverse",
                    )
                )
            if event.mode == "speculative":
                self.console.print(legend())
            self.console.print(Text(event.prompt, style="dim"), end="")
        elif isinstance(event, Iteration):
            self.console.print(iteration_text(event, self.show_rejected), end="", soft_wrap=True)
        elif isinstance(event, RunFinished):
            self.console.print()
            self.console.print(Text(f"[finished: {event.reason}]", style="dim"))


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def summary_table(summary: dict[str, Any]) -> Table:
    """The ``--json`` summary (``specviz.decoding.stats.summary_of``) as a table; None prints "–"."""
    table = Table(title="specviz run summary", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("mode", f"{summary['drafter'] or 'plain'} drafter" if summary["drafter"] else "plain decoding"),
        ("acceptance rule", "LOSSY (comparison only)" if summary["lossy"] else "lossless rejection sampling"),
        ("generated tokens", str(len(summary["token_ids"]))),
        ("iterations", str(summary["iterations"])),
        ("drafted / accepted", f"{summary['drafted']} / {summary['accepted']}"),
        ("acceptance rate (accepted/drafted)", _fmt(summary["acceptance_rate"])),
        ("α estimate (E Σ min(p,q))", _fmt(summary["alpha_estimate"])),
        ("mean accepted length (incl. correction)", _fmt(summary["mean_accepted_length"], ".2f")),
        ("per-position acceptance", " ".join(f"{x:.2f}" for x in summary["per_position_acceptance"]) or "–"),
        ("tokens/s", _fmt(summary["tokens_per_s"], ".2f")),
        ("draft time / verify time (s)", f"{summary['draft_time_s']:.2f} / {summary['verify_time_s']:.2f}"),
        ("draft step (ms/token)", _fmt(_ms(summary["draft_step_s"]), ".1f")),
        ("verify step (ms/iteration)", _fmt(_ms(summary["verify_step_s"]), ".1f")),
    ]
    if summary.get("peak_rss_bytes"):
        rows.append(("peak resident memory (GB, whole process)", f"{summary['peak_rss_bytes'] / 1e9:.2f}"))
    if "speedup" in summary:
        rows += [
            ("baseline tokens/s (plain, same settings)", _fmt(summary["baseline_tokens_per_s"], ".2f")),
            ("target step (ms/token, plain)", _fmt(_ms(summary["target_step_s"]), ".1f")),
            ("c = draft step / target step", _fmt(summary["cost_ratio_c"])),
            ("speedup (measured, this run)", _times(summary["speedup"])),
        ]
        if summary["temperature"] == 0:
            verdict = "yes" if summary["identical"] else "NO"
            if not summary["identical"] and summary["dtype"] in ("bfloat16", "float16"):
                # Measured: a k-token verify forward rounds differently from 1-token steps in
                # 16-bit, so near-ties can flip; transformers' assisted generation shows the same.
                verdict += f" ({summary['dtype']} rounding flips near-ties; --dtype float32 is token-exact)"
            rows.append(("identical to plain greedy (same dtype)", verdict))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _times(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}x"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
