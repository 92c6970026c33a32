"""Plain versus speculative: is the output the same, and how much faster was it?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specviz.tui.recording import Recording


@dataclass(frozen=True)
class RaceVerdict:
    identical: bool | None  # None: not comparable (sampling, or a run unfinished)
    text: str


def race_verdict(plain: Recording, speculative: Recording) -> RaceVerdict:
    """Greedy outputs must match token for token (the decoder is lossless); sampled ones need not."""
    if plain.finished is None or speculative.finished is None:
        return RaceVerdict(None, "… decoding")
    if not (plain.greedy and speculative.greedy):
        return RaceVerdict(
            None, "≈ sampling (T>0): the distribution is the same, the sample need not be; use T=0 to compare"
        )
    a, b = plain.finished.token_ids, speculative.finished.token_ids
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        if len(a) == len(b):
            return RaceVerdict(True, f"✓ identical greedy outputs ({n} tokens)")
        return RaceVerdict(
            True, f"✓ identical greedy outputs for the first {n} tokens (lengths {len(a)}, {len(b)})"
        )
    first = next(i for i in range(n) if a[i] != b[i])
    return RaceVerdict(False, f"✗ greedy outputs differ at token {first}")


def speedup_text(plain: Recording, speculative: Recording) -> str | None:
    tp, ts = plain.decode_time(len(plain)), speculative.decode_time(len(speculative))
    np_, ns = plain.committed(len(plain)), speculative.committed(len(speculative))
    if not (tp > 0 and ts > 0 and np_ and ns):
        return None
    return f"{(ns / ts) / (np_ / tp):.2f}× tokens/s"


@dataclass(frozen=True)
class ReplayRoles:
    """The part each run of a recorded trace plays on screen."""

    main: Recording  # the run the replay opens on: the last speculative run, else the last run
    baseline: Recording | None  # the last plain run, if it is not the main one
    race: tuple[Recording, Recording] | None  # (plain, speculative) when the trace holds both


def replay_roles(runs: Sequence[Recording]) -> ReplayRoles:
    """Pick the runs of a trace (``runs`` not empty) to show, compare against, and race."""
    speculative = [r for r in runs if r.speculative]
    plain = [r for r in runs if not r.speculative]
    # A recorded rule comparison ends with its lossy runs: show the last lossless one.
    lossless = [r for r in speculative if r.started is None or not r.started.lossy]
    main = (lossless or speculative)[-1] if speculative else runs[-1]
    baseline = plain[-1] if plain and main is not plain[-1] else None
    race = (plain[-1], speculative[-1]) if speculative and plain else None
    return ReplayRoles(main, baseline, race)


def fair_baseline(run: Recording, baseline: Recording | None) -> Recording | None:
    """``baseline`` if it is a plain run of the same model and device: only then is its tokens/s fair."""
    if baseline is None or baseline is run or run.started is None or baseline.started is None:
        return None
    a, b = run.started, baseline.started
    if (a.target, a.device, a.dtype) != (b.target, b.device, b.dtype):
        return None
    return baseline
