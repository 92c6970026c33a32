"""Plain versus speculative: is the output the same, and how much faster was it?"""

from __future__ import annotations

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
