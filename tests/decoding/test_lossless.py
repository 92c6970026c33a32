"""Speculative decoding changes nothing but speed, on every drafter path, with a broken twin rejected.

Each test computes the *exact* distribution of the tokens the real loop generates (decoder,
drafter, verifier and backends unmodified) by enumerating every branch of its random draws
(tests/support/lossless.py), and compares it with the exact distribution of plain decoding,
enumerated the same way. Exact means no sampling error: a test sees any total variation (TV)
above ``TOLERANCE``.

Why ``TOLERANCE`` is 1e-6 and not 1e-9: the lossless rule computes in float32 (``to_probs``). Its
ratio target/draft reads rows that sum to 1 only up to float32 rounding, and its residual is
normalised in float32 before it is sampled; that moves the output by 7e-9 to 6.4e-8 on these
cases (measured per test below). The enumeration adds nothing of its own: it agrees with a float64
model of the loop to 1e-17 where the rule has neither step (the first test). Every broken twin
here moves the output by 0.078 or more.

Each path is paired with a deliberately broken variant of the same path, built here and never by
changing the product code, that the same check must reject; the docstrings give its measured TV.

What enumeration cannot see is how the loop uses its generator: it replaces the draws with exact
branches. :func:`test_real_generator_draws` samples the real loop instead, with a stated power.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from scipy.optimize import brentq
from scipy.stats import chi2, chisquare, ncx2

from specviz.decoding.acceptance import LosslessRule, VerifyResult
from specviz.decoding.backends import CausalLM, TableLM
from specviz.decoding.costs import CostTable
from specviz.decoding.decoder import DecodeConfig, speculative_decode
from specviz.decoding.drafters import Draft, Drafter, ModelDrafter, NgramDrafter
from specviz.decoding.drafters.cross_tokenizer import CrossTokenizerDrafter
from specviz.decoding.drafters.paced import AcceptanceEstimate, PacedDrafter
from specviz.decoding.lossy import (
    ThresholdRule,
    exact_output_distribution,
    exact_target_distribution,
    total_variation,
)
from specviz.decoding.sampling import SamplingConfig
from specviz.session import ModelOptions, RunSettings, Session
from tests.decoding.test_cross_tokenizer import DRAFT_PIECES, TARGET_PIECES, ToyCodec, ToyTokenizer
from tests.support.lossless import (
    Coverage,
    Outcome,
    WrappedDrafter,
    exact_distribution,
    outcome,
    plain_distribution,
    speculative_distribution,
    unmemoised_distribution,
)
from tests.support.tiny_models import save_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOLERANCE = 1e-6  # float32 rounding of the loop's own probabilities stays below 1e-7 here
T1 = SamplingConfig(temperature=1.0)
TRUNCATED = SamplingConfig(temperature=0.7, top_k=3, top_p=0.9)

Distribution = dict[Outcome, float]


# -- the check ------------------------------------------------------------------------------------


def assert_lossless(got: Distribution, reference: Distribution) -> float:
    """The check every test applies: the loop's exact output distribution is plain decoding's."""
    tv = total_variation(got, reference)
    assert tv < TOLERANCE, f"the output distribution moved by TV {tv:.3g}"
    return tv


def assert_rejected(got: Distribution, reference: Distribution) -> float:
    """The broken twin must fail :func:`assert_lossless`, by a margin far above float32 rounding."""
    with pytest.raises(AssertionError, match="moved by TV"):
        assert_lossless(got, reference)
    tv = total_variation(got, reference)
    assert tv > 1000 * TOLERANCE, f"the broken variant is only off by TV {tv:.3g}"
    return tv


# -- broken variants, built here and never in the product ------------------------------------------


class ResidualIsTarget(LosslessRule):
    """BROKEN: after a rejection the correction is drawn from the target row, not the residual
    ``norm(max(0, target_probs - draft_probs))``: tokens the draft already had its chance to propose
    are emitted twice over. Claims to be lossless, as the bug would."""

    def correction(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        return target_probs


class BonusFromPreviousRow(LosslessRule):
    """BROKEN: after every draft is accepted, the bonus token is drawn from the last drafted
    position's target row instead of the next one (an off-by-one on ``target_probs``)."""

    def __call__(
        self,
        draft_tokens: torch.Tensor,  # [k]
        draft_probs: torch.Tensor | None,  # [k, vocab]
        target_probs: torch.Tensor,  # [k + 1, vocab]
        generator: torch.Generator,
        greedy: bool,
    ) -> VerifyResult:
        k = int(draft_tokens.shape[0])
        if k:
            target_probs = torch.cat([target_probs[:k], target_probs[k - 1 : k]])  # [k + 1, vocab]
        return super().__call__(draft_tokens, draft_probs, target_probs, generator, greedy)


class CacheOneShort:
    """BROKEN backend: every rollback leaves the first token it should drop in the cache, while the
    backend reports the length it was asked for (``DynamicCache.crop`` off by one). The model then
    conditions on a rejected draft it was told to forget."""

    def __init__(self, inner: CausalLM) -> None:
        self.inner = inner
        self.vocab_size = inner.vocab_size
        self.device = inner.device
        self.stale = 0  # tokens in the inner cache that the caller believes are gone

    @property
    def length(self) -> int:
        return self.inner.length - self.stale

    def forward(self, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        return self.inner.forward(tokens, keep)

    def truncate(self, length: int) -> None:
        if length < self.length:
            self.inner.truncate(self.inner.length - (self.length - length) + 1)
            self.stale += 1

    def reset(self) -> None:
        self.inner.reset()
        self.stale = 0

    def synchronize(self) -> None:
        self.inner.synchronize()


class MisreportedTemperature(WrappedDrafter):
    """BROKEN drafter: samples its tokens at the run's temperature but reports rows at another
    (each row raised to ``power`` and renormalised: the row at temperature T / power), the
    "draft at T=0.8, score at T=1.0" mistake that ``to_probs`` exists to rule out."""

    def __init__(self, inner: Drafter, power: float) -> None:
        super().__init__(inner)
        self.power = power

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        draft = self.inner.propose(context, k, generator)
        if draft.probs is None or draft.probs.shape[0] == 0:
            return draft
        rows = draft.probs.pow(self.power)  # [k, vocab]
        return replace(draft, probs=rows / rows.sum(dim=-1, keepdim=True))


class Reseeding(WrappedDrafter):
    """BROKEN drafter: re-seeds the run's generator at every proposal, so every iteration repeats
    the same uniforms. Invisible to the enumeration, which replaces the draws."""

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        generator.manual_seed(0)
        return self.inner.propose(context, k, generator)


# -- the enumeration is checked before it is trusted -----------------------------------------------


def test_enumeration_agrees_with_an_independent_model_of_the_loop(codec) -> None:
    """3 tokens over a 4-token vocabulary. Plain decoding, replayed, equals
    :func:`~specviz.decoding.lossy.exact_target_distribution` (TV 0 measured). The speculative loop
    with the threshold rule equals :func:`~specviz.decoding.lossy.exact_output_distribution`, which
    models the loop in float64 without running it (TV 1e-17): a lossy rule, so agreement cannot
    come from an enumerator that returns the target whatever it runs. With the lossless rule the
    two differ by the loop's float32 rounding alone (TV 6.9e-9). Checkpoints change nothing but the
    number of replays, for a stateless drafter and for one that carries state between iterations."""
    target, draft = TableLM(4, order=2, seed=11, sharpness=1.0), TableLM(4, order=2, seed=12, sharpness=1.0)
    config = DecodeConfig(max_new_tokens=3, gamma=2, sampling=T1)
    plain = plain_distribution(target, [1], config, codec)
    assert total_variation(plain, exact_target_distribution(target, [1], 3, T1)) < 1e-12
    for rule, agreement in ((ThresholdRule(0.1), 1e-12), (LosslessRule(), TOLERANCE)):
        rule_config = replace(config, verifier=rule, lossy=rule.lossy)
        drafter = ModelDrafter(draft, T1, target_vocab_size=4)
        got = speculative_distribution(target, drafter, [1], rule_config, codec)
        expected = exact_output_distribution(target, draft, [1], 3, T1, 2, rule)
        assert total_variation(got, expected) < agreement
        assert total_variation(got, unmemoised_distribution(target, drafter, [1], rule_config, codec)) < 1e-12

    # The running α, the recent gains and the plain streak carry over between iterations: the
    # snapshot in each checkpoint keeps them, so memoised subtrees stay exact.
    small = TableLM(2, order=2, seed=31, sharpness=1.0)
    costs = CostTable(draft_step_s=0.2, verify_s=(1.0, 1.1, 1.2, 1.3))
    inner = ModelDrafter(TableLM(2, order=2, seed=32, sharpness=1.0), T1, target_vocab_size=2)
    paced = PacedDrafter(inner, costs, probe_every=2, window=1, fall_back_below=1.0)
    paced_config = DecodeConfig(max_new_tokens=5, gamma=3, sampling=T1)
    memoised = speculative_distribution(small, paced, [1], paced_config, codec)
    assert total_variation(memoised, unmemoised_distribution(small, paced, [1], paced_config, codec)) < 1e-12


# -- one test per drafter path ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampling", "draft_vocab"),
    [(T1, 4), (TRUNCATED, 4), (T1, 3), (T1, 6)],
    ids=["t1", "t0.7-topk3-topp0.9", "draft-vocab-smaller", "draft-vocab-larger"],
)
def test_draft_model(sampling: SamplingConfig, draft_vocab: int, codec) -> None:
    """ModelDrafter, γ = 2, 3 new tokens over a 4-token vocabulary (64 sequences): rejection,
    rollback, catch-up and the bonus token, at T = 1 and truncated, and with a draft vocabulary
    cut to 3 or padded to 6. Detects any TV above 1e-6 (measured: 7e-9 to 4.5e-8).

    Broken twin, the correction drawn from the target row instead of the residual: TV 0.173,
    0.206, 0.257, 0.191 (the four cases in order)."""
    target = TableLM(4, order=2, seed=11, sharpness=1.0)
    draft = TableLM(draft_vocab, order=2, seed=12, sharpness=1.0)
    config = DecodeConfig(max_new_tokens=3, gamma=2, sampling=sampling)
    reference = plain_distribution(target, [1], config, codec)
    seen = Coverage()
    drafter = ModelDrafter(draft, sampling, target_vocab_size=4)
    assert_lossless(speculative_distribution(target, drafter, [1], config, codec, seen), reference)
    assert {kind for _, drafted, kind, _ in seen.iterations if drafted == 2} == {"resampled", "bonus"}

    broken = replace(config, verifier=ResidualIsTarget())
    assert_rejected(speculative_distribution(target, drafter, [1], broken, codec), reference)


def test_a_stale_draft_cache_costs_acceptance_not_correctness(codec) -> None:
    """Why a draft cache rolled back one short is no negative control: the drafter still reports the
    distribution it really drew from, so verification keeps the output exact (measured TV 1.1e-8);
    only acceptance suffers. tests/decoding/test_drafter_cache.py checks the draft cache itself."""
    target = TableLM(4, order=2, seed=11, sharpness=1.0)
    draft = CacheOneShort(TableLM(4, order=2, seed=12, sharpness=1.0))
    config = DecodeConfig(max_new_tokens=3, gamma=2, sampling=T1)
    drafter = ModelDrafter(draft, T1, target_vocab_size=4)
    got = speculative_distribution(target, drafter, [1], config, codec)
    assert_lossless(got, plain_distribution(target, [1], config, codec))
    stale_after = []
    for seed in range(20):  # a real run leaves the count as its last rollback left it
        list(speculative_decode(target, drafter, [1], replace(config, seed=seed), codec))
        stale_after.append(draft.stale)
    assert max(stale_after) > 0, "the draft cache must have kept a stale token"


def test_ngram(codec) -> None:
    """NgramDrafter (one-hot drafts) on a prompt whose tail recurs, γ = 3, 4 new tokens over a
    3-token vocabulary (81 sequences): lookups of 1 to 3 tokens, accepted and rejected. Detects any
    TV above 1e-6 (measured: 1.1e-8).

    Broken twin, the target's KV cache rolled back one token short: TV 0.479."""
    target = TableLM(3, order=2, seed=21, sharpness=1.0)
    prompt = [0, 1, 2, 0, 1, 2, 0, 1]
    config = DecodeConfig(max_new_tokens=4, gamma=3, sampling=T1)
    reference = plain_distribution(target, prompt, config, codec)
    seen = Coverage()
    drafter = NgramDrafter(max_ngram=2)
    assert_lossless(speculative_distribution(target, drafter, prompt, config, codec, seen), reference)
    assert {drafted for _, drafted, _, _ in seen.iterations} >= {1, 2, 3}
    assert {kind for _, drafted, kind, _ in seen.iterations if drafted} == {"resampled", "bonus"}

    broken_target = CacheOneShort(target)
    assert_rejected(speculative_distribution(broken_target, drafter, prompt, config, codec), reference)


def test_adaptive_draft_length(codec) -> None:
    """ModelDrafter(adaptive=True), γ = 6, 6 new tokens over a 2-token vocabulary (64 sequences):
    the length starts at 4, below the decoder's 5, then shrinks after rejections and grows after
    full acceptance. Detects any TV above 1e-6 (measured: 1.9e-8).

    Broken twin, the bonus token drawn from the previous position's target row: TV 0.0785."""
    target = TableLM(2, order=2, seed=31, sharpness=1.0)
    draft = TableLM(2, order=2, seed=32, sharpness=1.0)
    config = DecodeConfig(max_new_tokens=6, gamma=6, sampling=T1)
    reference = plain_distribution(target, [1], config, codec)
    seen = Coverage()
    drafter = ModelDrafter(draft, T1, target_vocab_size=2, adaptive=True)
    assert_lossless(speculative_distribution(target, drafter, [1], config, codec, seen), reference)
    assert {(5, 4), (4, 3), (3, 2)} <= seen.shortened(), "the adaptive length must bind, at several lengths"

    broken = replace(config, verifier=BonusFromPreviousRow())
    assert_rejected(speculative_distribution(target, drafter, [1], broken, codec), reference)


def test_automatic_gamma_over_the_confidence_stop(codec) -> None:
    """``--gamma auto``: PacedDrafter with a cost table around a ModelDrafter with the default
    confidence stop (0.4), γ = 4, 5 new tokens over a 3-token vocabulary (243 sequences); a
    one-iteration window lets pacing act within 5 tokens. It falls back to plain steps (asks for 0
    while it could draft) and probes; the confidence stop cuts drafts short. Detects any TV above 1e-6 (measured: 6.4e-8).

    Broken twin, draft rows reported at half the temperature they were sampled at: TV 0.118."""
    target = TableLM(3, order=2, seed=51, sharpness=1.0)
    draft = TableLM(3, order=2, seed=52, sharpness=0.7)
    config = DecodeConfig(max_new_tokens=5, gamma=4, sampling=T1)
    reference = plain_distribution(target, [1], config, codec)
    # With these costs a drafting iteration pays only when it commits over 1.2 tokens per T(1).
    costs = CostTable(draft_step_s=0.2, verify_s=(1.0, 1.1, 1.2))
    inner = ModelDrafter(draft, T1, target_vocab_size=3, confidence_stop=0.4)
    drafter = PacedDrafter(inner, costs, probe_every=2, window=1, fall_back_below=1.0)
    seen = Coverage()
    assert_lossless(speculative_distribution(target, drafter, [1], config, codec, seen), reference)
    assert any(asked == 0 and room for asked, _, _, room in seen.iterations), "pacing must fall back"
    assert seen.shortened(), "the confidence stop must bind"

    broken = MisreportedTemperature(drafter, power=2.0)
    assert_rejected(speculative_distribution(target, broken, [1], config, codec), reference)


def test_automatic_gamma_from_the_acceptance_estimate(codec) -> None:
    """``--gamma auto`` around a drafter with no stop of its own: PacedDrafter drafts the
    cost-optimal length for its running α, 0, 1 or 2 per iteration, γ = 2, 5 new tokens over a
    3-token vocabulary (243 sequences). Detects any TV above 1e-6 (measured: 5.6e-8).

    Broken twin, the bonus token drawn from the previous position's target row: TV 0.184."""
    target = TableLM(3, order=2, seed=41, sharpness=1.0)
    draft = TableLM(3, order=2, seed=42, sharpness=1.0)
    config = DecodeConfig(max_new_tokens=5, gamma=2, sampling=T1)
    reference = plain_distribution(target, [1], config, codec)
    # With these costs the best length is 0 for α < 0.3, 1 up to α = 0.61, then 2.
    costs = CostTable(draft_step_s=0.2, verify_s=(1.0, 1.1, 1.2))
    inner = ModelDrafter(draft, T1, target_vocab_size=3)
    estimate = AcceptanceEstimate(0.62, 1.0, 0.5)
    drafter = PacedDrafter(inner, costs, probe_every=2, window=1, fall_back_below=1.0, estimate=estimate)
    seen = Coverage()
    assert_lossless(speculative_distribution(target, drafter, [1], config, codec, seen), reference)
    asked = {asked for asked, _, _, room in seen.iterations if room}
    assert asked == {0, 1, 2}, "pacing must use every length"

    broken = replace(config, verifier=BonusFromPreviousRow())
    assert_rejected(speculative_distribution(target, drafter, [1], broken, codec), reference)


def test_confidence_stop_with_long_drafts(codec) -> None:
    """ModelDrafter(confidence_stop=0.6), γ = 5, 6 new tokens over a 3-token vocabulary at top-k 2
    (64 sequences; top-k keeps the branches few enough to enumerate): drafts of every length from 1
    to 5, the stop cutting drafts of 2 to 5 short, a bonus after 4 accepted drafts. Detects any TV
    above 1e-6 (measured: 2.3e-8).

    Broken twin, the threshold rule (accept when the target gives a token over 0.3): TV 0.360."""
    sampling = SamplingConfig(temperature=1.0, top_k=2)
    target = TableLM(3, order=2, seed=41, sharpness=1.0)
    draft = TableLM(3, order=2, seed=42, sharpness=1.5)
    config = DecodeConfig(max_new_tokens=6, gamma=5, sampling=sampling)
    reference = plain_distribution(target, [1], config, codec)
    seen = Coverage()
    drafter = ModelDrafter(draft, sampling, target_vocab_size=3, confidence_stop=0.6)
    assert_lossless(speculative_distribution(target, drafter, [1], config, codec, seen), reference)
    assert {drafted for _, drafted, _, _ in seen.iterations} >= {1, 2, 3, 4, 5}
    assert {(2, 1), (3, 2), (4, 2), (5, 4)} <= seen.shortened(), "the stop must bind, at several lengths"
    assert any(drafted == 4 and kind == "bonus" for _, drafted, kind, _ in seen.iterations)

    broken = replace(config, verifier=ThresholdRule(0.3), lossy=True)
    assert_rejected(speculative_distribution(target, drafter, [1], broken, codec), reference)


@pytest.mark.parametrize(
    "sampling", [T1, SamplingConfig(0.8, top_k=3, top_p=0.9)], ids=["t1", "t0.8-topk3-topp0.9"]
)
def test_cross_tokenizer_tli(sampling: SamplingConfig) -> None:
    """Token-level intersection: a 5-token draft vocabulary with pieces the target lacks ("aba",
    "bb") and a target-only piece ("ba"), γ = 2, 3 new tokens (64 sequences), at T = 1 and with
    top-k and top-p. The draft never proposes "ba", which the target still emits. Detects any TV
    above 1e-6 (measured: 3.2e-8, 3.7e-8).

    Broken twin, draft rows reported at half the temperature they were sampled at: TV 0.141, 0.152."""
    target_tok, draft_tok = ToyTokenizer(TARGET_PIECES), ToyTokenizer(DRAFT_PIECES)
    target = TableLM(len(TARGET_PIECES), order=2, seed=11, sharpness=1.0)
    draft = TableLM(len(DRAFT_PIECES), order=2, seed=12, sharpness=1.0)
    codec = ToyCodec(target_tok)
    config = DecodeConfig(max_new_tokens=3, gamma=2, sampling=sampling)
    reference = plain_distribution(target, [0], config, codec)
    drafter = CrossTokenizerDrafter(draft, draft_tok, target_tok, sampling, len(TARGET_PIECES))
    assert drafter.name == "cross-tli"
    seen = Coverage()
    got = speculative_distribution(target, drafter, [0], config, codec, seen)
    assert_lossless(got, reference)
    assert seen.drafted_tokens == {0, 1, 2}, "only the pieces both vocabularies share are drafted"
    assert sum(p for seq, p in got.items() if 3 in seq) > 0.1, "the target-only piece is still emitted"
    assert {kind for _, drafted, kind, _ in seen.iterations if drafted == 2} == {"resampled", "bonus"}

    broken = MisreportedTemperature(drafter, power=2.0)
    assert_rejected(speculative_distribution(target, broken, [0], config, codec), reference)


@pytest.fixture(scope="module")
def int8_session(tmp_path_factory) -> Session:
    """Tiny random Qwen2 checkpoints (257-token byte vocabulary) loaded as ``specviz run`` does on
    a CPU: packed float32 target, int8 draft. The draft is the target's own weights quantized, so
    the two agree often enough to accept and differ enough to reject."""
    root: Path = tmp_path_factory.mktemp("tiny")
    target = save_tiny_checkpoint(root / "target", seed=1)
    draft = save_tiny_checkpoint(root / "draft", seed=1)
    session = Session(ModelOptions(target, draft, device="cpu"))
    assert session.draft_quant == "int8"
    return session


def test_session_with_int8_draft(int8_session: Session) -> None:
    """``Session`` + ``HFBackend`` with the int8 draft, top-k 2 at T = 1 (so every branch can be
    enumerated), γ = 2 without the confidence stop, 3 new tokens (8 sequences): KV caches rolled
    back with ``DynamicCache.crop`` on both models. Verification scores k + 1 positions in one
    forward where plain decoding scores one, so float32 logits differ slightly between the two.
    Detects any TV above 1e-6 (measured: 5.6e-8).

    Broken twin, the same session with ``--rule threshold --tau 0.5``: TV 0.315. (A target KV cache
    cropped one token short moves these tiny random models by TV 2.3e-6 only: they barely attend to
    one stale entry, so that bug is caught on the toy models, in :func:`test_ngram`.)"""
    session = int8_session
    settings = RunSettings(
        prompt="hello", temperature=1.0, top_k=2, gamma=2, max_new_tokens=3, draft_confidence=None
    )
    prompt = session.encode(settings)
    reference = exact_distribution(lambda: list(session.plain(settings, prompt))[-1].token_ids)

    def speculative(settings: RunSettings, seen: Coverage | None = None) -> Distribution:
        config = session.config(settings)
        return exact_distribution(lambda: outcome(list(session.speculative(settings, prompt)), config, seen))

    seen = Coverage()
    assert_lossless(speculative(settings, seen), reference)
    assert {kind for _, drafted, kind, _ in seen.iterations if drafted == 2} == {"resampled", "bonus"}
    assert_rejected(speculative(settings.evolve(rule="threshold", tau=0.5)), reference)


# -- the real generator ----------------------------------------------------------------------------


def detectable_tv(cells: int, runs: int, alpha: float, power: float) -> float:
    """Smallest TV that a chi-square test over ``cells`` cells and ``runs`` runs detects with
    probability ``power`` at level ``alpha``, whatever shape the deviation has.

    The test's noncentrality is runs * sum(delta^2 / p) >= 4 * runs * TV^2 (Cauchy-Schwarz, equal
    when every cell is off by the same fraction of its probability), so once that bound reaches the
    noncentrality the power needs, the deviation is detected at least that often.
    """
    df = cells - 1
    critical = chi2.ppf(1 - alpha, df)
    needed = brentq(lambda lam: ncx2.sf(critical, df, lam) - power, 1e-9, 1e4)
    return math.sqrt(needed / (4 * runs))


def test_real_generator_draws(codec) -> None:
    """The enumeration replaces the generator's draws, so a loop that misused its generator
    (re-seeding it, reusing a draw) would pass every test above. Here the real loop samples with its
    real generator: 3000 seeded runs, ModelDrafter, γ = 2, 3 new tokens over a 3-token vocabulary
    (27 sequences), compared with the exact distribution by a chi-square test at α = 1e-3. It
    detects any deviation of TV ≥ 0.063 with power 0.9 (:func:`detectable_tv`; sampling alone
    gives an empirical TV near sqrt(27 / (2π · 3000)) = 0.038, so a TV threshold would do no
    better). Far too coarse for losslessness, which the exact tests establish; ample for misuse of
    the generator, which moves the output wholesale.

    Broken twin, the generator re-seeded at every proposal: empirical TV 0.97, p below 1e-300."""
    runs, alpha = 3000, 1e-3
    target = TableLM(3, order=2, seed=61, sharpness=1.0)
    draft = TableLM(3, order=2, seed=62, sharpness=1.0)
    exact = exact_target_distribution(target, [1], 3, T1)
    assert len(exact) == 27 and detectable_tv(len(exact), runs, alpha, 0.9) < 0.064

    def sampled(drafter: Drafter) -> tuple[float, float]:
        """(chi-square p-value, empirical TV) of ``runs`` seeded runs against ``exact``."""
        counts: Counter[Outcome] = Counter()
        for seed in range(runs):
            config = DecodeConfig(max_new_tokens=3, gamma=2, sampling=T1, seed=seed)
            counts[list(speculative_decode(target, drafter, [1], config, codec))[-1].token_ids] += 1
        assert set(counts) <= set(exact)
        seqs = sorted(exact)
        total = math.fsum(exact.values())
        p = chisquare([counts[s] for s in seqs], [exact[s] / total * runs for s in seqs]).pvalue
        return p, total_variation({s: c / runs for s, c in counts.items()}, exact)

    drafter = ModelDrafter(draft, T1, target_vocab_size=3)
    p, _ = sampled(drafter)
    assert p > alpha, f"the sampled output differs from the target (p = {p:.2e})"
    p_broken, tv_broken = sampled(Reseeding(drafter))
    assert p_broken < alpha and tv_broken > 0.5
