"""Loaded models plus settings: the one place that turns CLI/UI options into event iterators."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import torch

from specviz.decoding.backends import HFBackend
from specviz.decoding.costs import CostTable
from specviz.decoding.decoder import DecodeConfig, RunInfo, autoregressive_decode, speculative_decode
from specviz.decoding.drafters import Drafter, ModelDrafter, NgramDrafter
from specviz.decoding.drafters.paced import PacedDrafter
from specviz.decoding.events import Event
from specviz.decoding.sampling import SamplingConfig
from specviz.decoding.settings import RunSettings
from specviz.decoding.tree_decoder import TreeDrafter, tree_decode
from specviz.models import LoadedModel, load_model, quantize_draft, same_vocabulary


class HFCodec:
    """Token text through a transformers tokenizer (cached: the same ids recur constantly)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.token_text = lru_cache(maxsize=65536)(self._token_text)

    def _token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)


@dataclass(frozen=True)
class ModelOptions:
    target: str
    draft: str | None
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    trust_remote_code: bool = False
    draft_quant: str = "auto"  # auto: int8 on CPU float32, else none (see models.quantize_draft)
    pack: str = "auto"  # auto: oneDNN-packed Linear weights on CPU float32 (see packing.py); none


def acceptance_rule(settings: RunSettings) -> tuple[Any, bool]:
    """(verifier, lossy) for the settings' rule (see decoding.lossy.rule_for)."""
    from specviz.decoding.lossy import rule_for

    rule = rule_for(settings.rule, settings.tau, settings.typical_epsilon, settings.typical_delta)
    return rule, rule.lossy


class Session:
    """Target (and optional draft) loaded once; each run gets fresh caches and a fresh generator."""

    def __init__(
        self, options: ModelOptions, progress: Any = None, target: LoadedModel | None = None
    ) -> None:
        """Load ``options``' models; ``target``: an already loaded target to use instead (see
        :meth:`with_draft`)."""
        kwargs = {"progress": progress} if progress else {}
        self.options = options
        self._progress = progress
        self._costs: CostTable | None = None
        if target is not None and target.spec != options.target:
            raise ValueError(f"the loaded target is {target.spec}, the options ask for {options.target}")
        self.target: LoadedModel = target or load_model(
            options.target,
            options.device,
            options.dtype,
            options.device_map,
            options.trust_remote_code,
            pack=options.pack != "none",
            **kwargs,
        )
        self.draft: LoadedModel | None = None
        self.draft_quant = "none"
        self.same_vocab = True
        self._vocab_map: torch.Tensor | None = None  # cross-tokenizer id map, built once per session
        if options.draft:
            # The draft always lives on one device: the one the target's inputs live on.
            # On CPU the draft is int8-quantized from float32 weights (faster than any float
            # dtype there); its dtype never has to match the target's.
            int8_draft = self.target.device.type == "cpu" and options.draft_quant in ("auto", "int8")
            self.draft = load_model(
                options.draft,
                str(self.target.device),
                "float32" if int8_draft else options.dtype,
                None,
                options.trust_remote_code,
                pack=options.pack != "none" and not int8_draft,
                **kwargs,
            )
            # Different tokenizers (or a draft that cannot embed every id the target emits) are
            # bridged by decoding/drafters/cross_tokenizer.py (through text when greedy, token-level
            # intersection when sampling) instead of feeding one model's token ids to the other.
            self.same_vocab = same_vocabulary(self.target, self.draft)
            if progress and int8_draft:
                progress(f"quantizing {options.draft} to int8", 0, 1)
            self.draft_quant = quantize_draft(self.draft, options.draft_quant)
            if progress and int8_draft:
                progress(f"quantizing {options.draft} to int8", 1, 1)
        self.codec = HFCodec(self.target.tokenizer)
        self.target_backend = HFBackend(self.target.model)
        self.draft_backend = HFBackend(self.draft.model) if self.draft else None

    def with_draft(self, draft: str | None, progress: Any = None) -> Session:
        """A session on this one's loaded target with another draft model (None: no draft model).

        The target is shared, not loaded again: it is the gigabytes and most of the seconds of a
        load. Each session keeps its own caches, so the two can run one after the other.
        """
        return Session(replace(self.options, draft=draft), progress or self._progress, target=self.target)

    def encode(self, settings: RunSettings) -> list[int]:
        tok = self.target.tokenizer
        if settings.chat:
            if not getattr(tok, "chat_template", None):
                raise ValueError(f"{self.options.target} has no chat template: drop --chat")
            ids = tok.apply_chat_template(
                [{"role": "user", "content": settings.prompt}], add_generation_prompt=True, tokenize=True
            )
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        return [int(i) for i in tok(settings.prompt, add_special_tokens=True)["input_ids"]]

    def config(self, settings: RunSettings) -> DecodeConfig:
        verifier, lossy = acceptance_rule(settings)
        return DecodeConfig(
            verifier=verifier,
            lossy=lossy,
            max_new_tokens=settings.max_new_tokens,
            gamma=settings.gamma,
            sampling=SamplingConfig(settings.temperature, settings.top_k, settings.top_p),
            seed=settings.seed,
            eos_token_ids=self.target.eos_token_ids,
            context_length=self.target.context_length,
        )

    def info(self, settings: RunSettings, with_draft: bool) -> RunInfo:
        return RunInfo(
            target=self.options.target,
            draft=(
                f"{self.options.draft}" + (f" [{self.draft_quant}]" if self.draft_quant != "none" else "")
                if with_draft and settings.drafter in ("model", "tree", "hybrid")  # see uses_draft_model
                else None
            ),
            device=str(self.target.device),
            dtype=str(self.target.dtype).removeprefix("torch."),
            prompt=settings.prompt,
        )

    def drafter(self, settings: RunSettings) -> Drafter:
        if settings.drafter == "ngram":
            return NgramDrafter(max_ngram=settings.ngram_max, device=self.target.device)
        if settings.drafter != "model":
            raise ValueError(f"unknown drafter {settings.drafter!r}: use model or ngram")
        if self.draft_backend is None or self.draft is None:
            raise ValueError("the model drafter needs a draft model (--draft), or use --drafter ngram")
        sampling = SamplingConfig(settings.temperature, settings.top_k, settings.top_p)
        if not self.same_vocab:
            from specviz.decoding.drafters.cross_tokenizer import CrossTokenizerDrafter

            drafter = CrossTokenizerDrafter(
                self.draft_backend,
                self.draft.tokenizer,
                self.target.tokenizer,
                sampling,
                self.target_backend.vocab_size,
                method=settings.cross_method,  # type: ignore[arg-type]
                vocab_map=self._vocab_map,
            )
            if drafter.method == "tli":
                self._vocab_map = drafter.vocab_map
            return drafter
        return ModelDrafter(
            self.draft_backend,
            sampling,
            self.target_backend.vocab_size,
            confidence_stop=settings.draft_confidence,
            adaptive=settings.adaptive,
        )

    def tree_drafter(self, settings: RunSettings) -> TreeDrafter:
        """The token-tree drafter the settings name (tree, lookup-tree or hybrid)."""
        from specviz.decoding.drafters.hybrid import HybridTreeDrafter
        from specviz.decoding.drafters.lookup_tree import LookupTreeDrafter
        from specviz.decoding.drafters.model_tree import ModelTreeDrafter

        # Matches of 2+ tokens: a single repeated token proposes too many wrong branches (measured:
        # the lookup tree at 1.10x plain with matches of 2+ against 0.96x with 1+, same bench run).
        lookup = LookupTreeDrafter(
            max_ngram=settings.ngram_max, min_ngram=min(2, settings.ngram_max), device=self.target.device
        )
        if settings.drafter == "lookup-tree":
            return lookup
        if self.draft_backend is None or self.draft is None:
            raise ValueError(
                f"--drafter {settings.drafter} needs a draft model (--draft), or use --drafter lookup-tree"
            )
        if not self.same_vocab:
            raise ValueError(
                f"--drafter {settings.drafter} needs a draft with the target's tokenizer; "
                f"{self.options.draft} has another one: use --drafter model (it bridges tokenizers) "
                "or --drafter lookup-tree"
            )
        sampling = SamplingConfig(settings.temperature, settings.top_k, settings.top_p)
        model = ModelTreeDrafter(self.draft_backend, sampling, self.target_backend.vocab_size)
        return model if settings.drafter == "tree" else HybridTreeDrafter(model, lookup)

    def paced_tree(self, drafter: TreeDrafter, settings: RunSettings) -> TreeDrafter:
        """``drafter`` with an automatic node budget (up to γ) when the settings ask for it."""
        if not settings.auto_gamma:
            return drafter
        from specviz.decoding.drafters.paced_tree import PacedTreeDrafter

        costs = self.costs(settings.gamma + 1)
        if settings.drafter == "lookup-tree":  # a lookup costs nothing next to a forward
            costs = costs.without_draft_cost()
        return PacedTreeDrafter(drafter, costs)

    def paced(self, drafter: Drafter, settings: RunSettings) -> Drafter:
        """``drafter`` under automatic γ when the settings ask for it (see decoding/drafters/paced.py)."""
        if not settings.auto_gamma:
            return drafter
        costs = self.costs(settings.gamma + 1)
        if drafter.name == "ngram":  # a lookup in a token list costs nothing next to a forward
            costs = costs.without_draft_cost()
        return PacedDrafter(drafter, costs)

    def costs(self, max_k: int) -> CostTable:
        """T(1..max_k) and the draft step, measured once per setup (cached on disk)."""
        if self._costs is None or self._costs.max_draft + 1 < max_k:
            from specviz.session.cost_cache import load_or_measure, setup_key

            o = self.options
            key = setup_key(
                {
                    "target": o.target,
                    "draft": o.draft,
                    "dtype": str(self.target.dtype),
                    "device": str(self.target.device),
                    "pack": o.pack,
                    "draft_quant": self.draft_quant,
                }
            )

            stages: list[str] = []

            def report(stage: str) -> None:
                stages.append(stage)
                if self._progress:
                    self._progress(stage, 0, 1)

            self._costs = load_or_measure(key, self.target_backend, self.draft_backend, max_k, report)
            if stages and self._progress:
                self._progress(stages[-1], 1, 1)
        return self._costs.up_to(max_k)

    def speculative(self, settings: RunSettings, prompt_ids: list[int] | None = None) -> Iterator[Event]:
        prompt_ids = self.encode(settings) if prompt_ids is None else prompt_ids
        if settings.tree:
            return tree_decode(
                self.target_backend,
                self.paced_tree(self.tree_drafter(settings), settings),
                prompt_ids,
                self.config(settings),
                self.codec,
                self.info(settings, with_draft=settings.drafter != "lookup-tree"),
            )
        return speculative_decode(
            self.target_backend,
            self.paced(self.drafter(settings), settings),
            prompt_ids,
            self.config(settings),
            self.codec,
            self.info(settings, with_draft=True),
        )

    def plain(
        self, settings: RunSettings, prompt_ids: list[int] | None = None, backend: HFBackend | None = None
    ) -> Iterator[Event]:
        """Plain decoding with the target (or ``backend``: the bench's other-dtype copy of it)."""
        prompt_ids = self.encode(settings) if prompt_ids is None else prompt_ids
        return autoregressive_decode(
            backend or self.target_backend,
            prompt_ids,
            self.config(settings),
            self.codec,
            self.info(settings, False),
        )

    def warm_up(self) -> None:
        """One small forward per model, so one-off kernel setup never lands in a timed run."""
        tokens = torch.arange(8, device=self.target.device)
        for backend in (self.target_backend, self.draft_backend):
            if backend is not None:
                backend.reset()
                backend.forward(tokens, keep=1)
                backend.forward(tokens[:1], keep=1)
                backend.reset()
