"""What one run is asked to do: the settings the CLI, the bench and the UI all build and edit.

Torch-free, so the UI (which never imports torch) edits the very type the session decodes with:
settings the UI has no key for (``--chat``, ``--rule``, ``--draft-confidence``, ...) ride along
unchanged through every UI edit, and every value is checked here, once, whoever set it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, get_args

from specviz.decoding.events import RunStarted

Mode = Literal["speculative", "autoregressive"]
DrafterName = Literal["model", "ngram", "tree", "lookup-tree", "hybrid"]
# Drafters that propose token trees (decoding/tree.py): γ is then the node budget per iteration.
TREE_DRAFTERS: tuple[DrafterName, ...] = ("tree", "lookup-tree", "hybrid")
CrossMethod = Literal["auto", "text", "tli"]
RuleName = Literal["lossless", "threshold", "typical"]
GammaChoice = int | Literal["auto"]
"""γ as the user gives it: a fixed number of drafted tokens per iteration, or "auto"."""

# The most tokens automatic γ may draft in one iteration (``--gamma auto``), unless the user
# changes that cap (the UI's γ keys do).
AUTO_GAMMA_CAP = 16


def parse_gamma(text: str) -> GammaChoice:
    """``"auto"`` or a whole number, as typed on the command line (its range is checked by RunSettings).

    >>> parse_gamma("auto"), parse_gamma("8")
    ('auto', 8)
    """
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"γ must be a whole number or 'auto', not {text!r}") from None


def gamma_fields(choice: GammaChoice) -> tuple[int, bool]:
    """``(gamma, auto_gamma)`` for a γ choice: "auto" drafts automatically up to AUTO_GAMMA_CAP.

    >>> gamma_fields("auto"), gamma_fields(8)
    ((16, True), (8, False))
    """
    if choice == "auto":
        return AUTO_GAMMA_CAP, True
    return int(choice), False


@dataclass(frozen=True)
class RunSettings:
    """What the user asks of the next run; the decoder reports what it really used in RunStarted.

    γ: ``gamma`` is the number of tokens drafted per iteration (0: draft nothing, every iteration
    is one target step); for a tree drafter (``tree``, ``lookup-tree``, ``hybrid``) it is the number
    of tree nodes. With ``auto_gamma`` each iteration instead drafts the number of tokens
    (0 to ``gamma``) that the measured costs and the running acceptance estimate predict to be
    fastest, so ``gamma`` is then the cap: one field keeps its meaning of "the most tokens one
    iteration drafts" either way, and changing γ under auto changes the cap. ``adaptive`` and
    ``draft_confidence`` also only shorten a draft below ``gamma``.

    Invalid values raise ``ValueError`` naming the command-line flag and what it allows, so the
    CLI can print the message as it is.
    """

    prompt: str
    drafter: DrafterName = "model"
    gamma: int = 8
    auto_gamma: bool = False
    temperature: float = 0.0  # 0 = greedy
    top_k: int | None = None  # None: no top-k limit
    top_p: float | None = None  # None: no nucleus limit
    seed: int = 0
    max_new_tokens: int = 128
    mode: Mode = "speculative"  # "autoregressive": plain decoding with the target alone
    chat: bool = False  # wrap the prompt in the target's chat template
    ngram_max: int = 3  # the longest n-gram the prompt-lookup drafter matches
    # Stop drafting below this draft top-probability (lossless; 0 = never). With γ=8 it was the best
    # measured setting across the bench categories on a 2-core CPU (bf16 target, int8 draft).
    draft_confidence: float | None = 0.4
    adaptive: bool = False  # adaptive draft length: γ becomes the cap (see ModelDrafter)
    cross_method: CrossMethod = "auto"  # different tokenizers: text (greedy) or tli (sampling)
    rule: RuleName = "lossless"  # threshold and typical are lossy, only for comparison
    tau: float = 0.1  # threshold rule: accept when target_prob > tau
    typical_epsilon: float = 0.09
    typical_delta: float = 0.3

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str, str, object]] = [
            (self.gamma >= 0, "--gamma", "a whole number >= 0 or 'auto'", self.gamma),
            (
                math.isfinite(self.temperature) and self.temperature >= 0,
                "--temperature",
                "a finite number >= 0 (0 = greedy)",
                self.temperature,
            ),
            (self.top_k is None or self.top_k >= 1, "--top-k", ">= 1", self.top_k),
            (self.top_p is None or 0 < self.top_p <= 1, "--top-p", "in (0, 1]", self.top_p),
            (self.max_new_tokens >= 1, "--max-new-tokens", ">= 1", self.max_new_tokens),
            (self.ngram_max >= 1, "ngram_max", ">= 1", self.ngram_max),
            (
                self.draft_confidence is None or 0 <= self.draft_confidence <= 1,
                "--draft-confidence",
                "in [0, 1] (0 = off)",
                self.draft_confidence,
            ),
            (0 <= self.tau < 1, "--tau", "in [0, 1)", self.tau),
            (0 < self.typical_epsilon < 1, "--typical-epsilon", "in (0, 1)", self.typical_epsilon),
            (self.typical_delta > 0, "--typical-delta", "> 0", self.typical_delta),
        ]
        for ok, flag, allowed, value in checks:
            if not ok:
                raise ValueError(f"{flag} must be {allowed}, got {value}")
        try:
            self.prompt.encode("utf-8")
        except UnicodeEncodeError as exc:  # bytes from argv or a file that are not UTF-8
            raise ValueError(
                f"the prompt is not valid UTF-8 text (byte {exc.start} of it): re-encode it as UTF-8"
            ) from None
        choices: list[tuple[str, object, object]] = [
            ("--drafter", self.drafter, DrafterName),
            ("--cross-method", self.cross_method, CrossMethod),
            ("--rule", self.rule, RuleName),
            ("mode", self.mode, Mode),
        ]
        for flag, value, allowed_type in choices:
            allowed = get_args(allowed_type)
            if value not in allowed:
                raise ValueError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")

        if self.drafter in TREE_DRAFTERS and self.mode == "speculative":
            if self.rule != "lossless":
                raise ValueError(
                    f"--drafter {self.drafter} verifies with rejection sampling only: drop --rule"
                )

    @property
    def uses_draft_model(self) -> bool:
        """Whether the run drafts with the draft model (the prompt-lookup drafters need none)."""
        return self.drafter in ("model", "tree", "hybrid")

    @property
    def tree(self) -> bool:
        """Whether the run drafts token trees (γ is then the number of nodes per iteration)."""
        return self.drafter in TREE_DRAFTERS

    @property
    def greedy(self) -> bool:
        """Temperature 0: every token is the argmax, so a run is the same whatever the seed."""
        return self.temperature == 0

    def evolve(self, **changes: object) -> RunSettings:
        """A copy with some fields changed, validated again."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_run_started(cls, started: RunStarted) -> RunSettings:
        """The settings a recorded run used, so a replayed run shows them in the settings bar.

        A trace records what the decoder used, not how it was asked: automatic γ, the acceptance
        rule's name and the drafter's options are not in it, so those keep their defaults. A plain
        run records γ 0: it drafted nothing.
        """
        # The decoder names the model drafter "cross-text" / "cross-tli" when it bridges two
        # tokenizers; anything but the n-gram drafter drafted with the draft model.
        name = started.drafter or "model"
        method = name.removeprefix("cross-")
        return cls(
            prompt=started.prompt,
            drafter=name if name in get_args(DrafterName) else "model",  # type: ignore[arg-type]
            cross_method=method if method in get_args(CrossMethod) else "auto",  # type: ignore[arg-type]
            gamma=max(0, started.gamma),
            temperature=started.temperature,
            top_k=started.top_k,
            top_p=started.top_p,
            seed=started.seed,
            max_new_tokens=max(1, started.max_new_tokens),
            mode=started.mode,
        )
