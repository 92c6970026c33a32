"""A deterministic, model-free event source that synthesises plausible speculative decoding runs.

It exists for tests, demos and snapshot baselines: pure Python, seeded per run (no global RNG), no
torch. Its "target model" continues the prompt with a fixed passage, so greedy plain and greedy
speculative runs emit identical tokens, as the real lossless decoder must. Its numbers (probabilities,
timings) are synthetic and only meant to look like a real run.

Identical by construction, a race on the fake proves nothing about the race's verdict; and nothing
in a fake run shows whether a cancelled one stopped computing. The race and cancellation tests run
the real decoder on tiny random models instead (tests/tui/test_tui_live_model.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from specviz.decoding.events import (
    Correction,
    DraftedToken,
    Event,
    Iteration,
    RunFinished,
    RunStarted,
    TokenProb,
)
from specviz.decoding.settings import RunSettings

_PASSAGE = (
    "Speculative decoding lets a small draft model guess the next few tokens, and the large target "
    "model checks every guess in a single forward pass. When the guess is right, several tokens are "
    "committed for the price of one step; when it is wrong, the target replaces the first bad token "
    "and the rest of the draft is thrown away.\n\nThe output is exactly what the target alone would "
    "have written, because each draft token is kept with probability min(1, p/q) and a rejected one "
    "is redrawn from the residual distribution. The speedup therefore depends on how often the draft "
    "agrees with the target, and on how cheap a draft step is compared with a target step — a café "
    "of trade-offs that the charts make visible.\n\n"
)

# Plausible wrong guesses: a drafter that disagrees still proposes real words.
_ALTERNATIVES = (
    " a",
    " the",
    " it",
    " model",
    " tokens",
    " quickly",
    " then",
    " large",
    " small",
    " one",
    " every",
    " is",
    " can",
    " step",
    " guess",
    " output",
    " when",
    " and",
    ",",
    ".",
)

_DRAFT_ACCEPTANCE = {"model": 0.78, "ngram": 0.55}


def _split_tokens(text: str) -> list[str]:
    """Word-piece-like tokens: leading space glued to the word, punctuation and newlines alone."""
    tokens: list[str] = []
    current = ""
    for ch in text:
        if ch == "\n":
            if current:
                tokens.append(current)
            tokens.append("\n")
            current = ""
        elif ch == " ":
            if current:
                tokens.append(current)
            current = " "
        elif ch in ",.;()/":
            if current.strip():
                tokens.append(current)
                current = ""
            tokens.append(current + ch if current == " " else ch)
            current = ""
        else:
            current += ch
    if current:
        tokens.append(current)
    return tokens


@dataclass(frozen=True)
class _Vocabulary:
    passage: tuple[str, ...]
    ids: dict[str, int]

    @classmethod
    def build(cls) -> _Vocabulary:
        passage = tuple(_split_tokens(_PASSAGE))
        words = sorted(set(passage) | set(_ALTERNATIVES))
        return cls(passage=passage, ids={w: 100 + i for i, w in enumerate(words)})

    def target_token(self, offset: int, position: int) -> str:
        return self.passage[(offset + position) % len(self.passage)]


_VOCAB = _Vocabulary.build()


@dataclass(frozen=True)
class FakeSource:
    """An :data:`~specviz.tui.source.EventSourceFactory`: call it with RunSettings to get events.

    ``delay_scale`` sleeps for the synthetic iteration time times this factor before yielding each
    iteration, so a demo looks live; tests keep it at 0.
    """

    target: str = "fake/target-1.5B"
    draft: str = "fake/draft-0.5B"
    target_step_s: float = 0.120
    draft_step_s: float = 0.040
    delay_scale: float = 0.0

    def __call__(self, settings: RunSettings) -> Iterator[Event]:
        return _FakeRun(self, settings).events()


class _FakeRun:
    def __init__(self, source: FakeSource, settings: RunSettings) -> None:
        self.source = source
        self.settings = settings
        # Seeded by everything that defines the run, so equal settings give equal events.
        self.rng = random.Random(
            f"{settings.seed}|{settings.prompt}|{settings.gamma}|{settings.drafter}|"
            f"{settings.temperature}|{settings.mode}"
        )
        # The target's continuation depends on the prompt and seed only: plain and speculative
        # greedy runs of the same prompt then agree token for token.
        self.offset = random.Random(f"{settings.seed}|{settings.prompt}").randrange(len(_VOCAB.passage))

    def _token(self, position: int) -> tuple[int, str]:
        text = _VOCAB.target_token(self.offset, position)
        return _VOCAB.ids[text], text

    def _alternative(self, avoid: str) -> tuple[int, str]:
        choices = [w for w in _ALTERNATIVES if w != avoid]
        text = self.rng.choice(choices)
        return _VOCAB.ids[text], text

    def _top(self, chosen: tuple[int, str], prob: float, avoid: str | None = None) -> tuple[TokenProb, ...]:
        """The chosen token first, then a few alternatives sharing what is left, in decreasing order."""
        entries = [TokenProb(chosen[0], chosen[1], round(prob, 4))]
        left = 1.0 - prob
        seen = {chosen[1], avoid}
        while len(entries) < 4 and left > 0.02:
            token_id, text = self._alternative(avoid or chosen[1])
            if text in seen:
                continue
            seen.add(text)
            share = min(left * self.rng.uniform(0.3, 0.7), entries[-1].prob * 0.9)
            entries.append(TokenProb(token_id, text, round(share, 4)))
            left -= share
        return tuple(entries)

    def _jitter(self, seconds: float) -> float:
        return round(seconds * self.rng.uniform(0.9, 1.1), 6)

    def events(self) -> Iterator[Event]:
        s = self.settings
        speculative = s.mode == "speculative"
        yield RunStarted(
            mode=s.mode,
            target=self.source.target,
            draft=(self.source.draft if s.drafter == "model" else None) if speculative else None,
            drafter=s.drafter if speculative else None,
            gamma=s.gamma if speculative else 0,
            temperature=s.temperature,
            top_k=s.top_k,
            top_p=s.top_p,
            seed=s.seed,
            max_new_tokens=s.max_new_tokens,
            device="cpu",
            dtype="fp32",
            prompt=s.prompt,
            prompt_token_ids=tuple(_VOCAB.ids.get(t, 99) for t in _split_tokens(s.prompt)),
            prefill_time_s=0.25,
        )
        token_ids: list[int] = []
        texts: list[str] = []
        wall = 0.0
        index = 0
        while len(token_ids) < s.max_new_tokens:
            remaining = s.max_new_tokens - len(token_ids)
            gamma = min(s.gamma, remaining - 1) if speculative else 0
            iteration = self._iteration(index, len(token_ids), gamma, s.gamma if speculative else 0)
            token_ids.extend(iteration.new_token_ids)
            texts.append(iteration.new_text)
            iteration = _with_total(iteration, len(token_ids))
            elapsed = iteration.draft_time_s + iteration.verify_time_s
            wall += elapsed
            if self.source.delay_scale > 0:
                time.sleep(elapsed * self.source.delay_scale)
            yield iteration
            index += 1
        yield RunFinished(
            reason="max_new_tokens",
            text="".join(texts),
            token_ids=tuple(token_ids),
            iterations=index,
            wall_time_s=round(wall, 6),
        )

    def _iteration(self, index: int, position: int, gamma: int, gamma_asked: int) -> Iteration:
        s = self.settings
        drafted: list[DraftedToken] = []
        rejected_at: int | None = None
        base = _DRAFT_ACCEPTANCE.get(s.drafter, 0.6) * (1 - 0.12 * min(s.temperature, 2.0))
        for j in range(gamma):
            right = self._token(position + j)
            if rejected_at is not None:
                guess = right if self.rng.random() < base else self._alternative(right[1])
                q = self.rng.uniform(0.2, 0.9)
                p = self.rng.uniform(0.05, 0.9)
                drafted.append(self._drafted(j, guess, q, p, None, "discarded", right))
                continue
            agrees = self.rng.random() < base - 0.03 * j
            guess = right if agrees else self._alternative(right[1])
            q = self.rng.uniform(0.45, 0.95) if agrees else self.rng.uniform(0.15, 0.6)
            p = min(0.99, q * self.rng.uniform(0.8, 1.35)) if agrees else q * self.rng.uniform(0.05, 0.7)
            if s.drafter == "ngram":
                q = 1.0
            if s.greedy:
                verdict = "accepted" if agrees else "rejected"
                u = None
            else:
                u = round(self.rng.random(), 4)
                verdict = "accepted" if u < min(1.0, p / q) else "rejected"
            if verdict == "rejected":
                rejected_at = j
            drafted.append(self._drafted(j, guess, q, p, u, verdict, right))

        committed = [d for d in drafted if d.verdict == "accepted"]
        n = len(committed)
        if gamma == 0:
            kind = "plain"
        elif rejected_at is None:
            kind = "bonus"
        else:
            kind = "resampled"
        chosen = self._token(position + n)
        if kind == "resampled" and not s.greedy and self.rng.random() < 0.25:
            # A sampled residual sometimes picks a token other than the passage's; the drafted one is
            # excluded (its residual mass is 0), so the redraw never repeats the rejected token.
            chosen = self._alternative(drafted[rejected_at].text)  # type: ignore[index]
        prob = self.rng.uniform(0.35, 0.95)
        correction = Correction(
            kind=kind,  # type: ignore[arg-type]
            token_id=chosen[0],
            text=chosen[1],
            prob=round(prob, 4),
            top=self._top(chosen, prob, avoid=drafted[rejected_at].text if rejected_at is not None else None),
        )
        new_ids = (*(d.token_id for d in committed), chosen[0])
        new_text = "".join(d.text for d in committed) + chosen[1]
        draft_step = self.source.draft_step_s if s.drafter == "model" else self.source.draft_step_s / 20
        return Iteration(
            index=index,
            gamma=gamma_asked if gamma else 0,
            drafted=tuple(drafted),
            correction=correction,
            new_token_ids=new_ids,
            new_text=new_text,
            draft_time_s=self._jitter(draft_step * gamma) if gamma else 0.0,
            verify_time_s=self._jitter(self.source.target_step_s * (1 + 0.08 * gamma)),
            total_tokens=0,
        )

    def _drafted(
        self,
        j: int,
        guess: tuple[int, str],
        q: float,
        p: float,
        u: float | None,
        verdict: str,
        right: tuple[int, str],
    ) -> DraftedToken:
        greedy = self.settings.greedy
        ratio = (1.0 if guess == right else 0.0) if greedy else round(p / q, 4)
        return DraftedToken(
            position=j,
            token_id=guess[0],
            text=guess[1],
            draft_prob=round(q, 4),
            target_prob=round(p, 4),
            ratio=ratio,
            u=u,
            verdict=verdict,  # type: ignore[arg-type]
            target_argmax=right[0],
            overlap=round(
                min(0.98, self.rng.uniform(0.55, 0.95) if guess == right else self.rng.uniform(0.2, 0.6)), 4
            ),
        )


def _with_total(iteration: Iteration, total: int) -> Iteration:
    return Iteration(
        index=iteration.index,
        gamma=iteration.gamma,
        drafted=iteration.drafted,
        correction=iteration.correction,
        new_token_ids=iteration.new_token_ids,
        new_text=iteration.new_text,
        draft_time_s=iteration.draft_time_s,
        verify_time_s=iteration.verify_time_s,
        total_tokens=total,
    )
