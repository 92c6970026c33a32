"""The draft-model drafter: a smaller causal LM that shares the target's tokenizer.

A draft with another tokenizer goes through :mod:`specviz.decoding.drafters.cross_tokenizer` instead.
"""

from __future__ import annotations

import torch

from specviz.decoding.backends import CausalLM
from specviz.decoding.drafters.base import Draft, common_prefix
from specviz.decoding.sampling import SamplingConfig, sample, to_probs


class ModelDrafter:
    """Drafts with a smaller causal LM that shares the target's tokenizer.

    Its cache mirrors ``self._tokens``. Each proposal first rolls the cache back to the longest
    prefix it shares with the committed context (dropping rejected drafts), then catches up on
    tokens it has not seen (the accepted last draft and the target's correction) in one forward.
    """

    name = "model"

    def __init__(
        self,
        backend: CausalLM,
        sampling: SamplingConfig,
        target_vocab_size: int,
        confidence_stop: float | None = None,
        adaptive: bool = False,
    ) -> None:
        self.backend = backend
        self.sampling = sampling
        self.target_vocab_size = target_vocab_size
        # Stop drafting once the draft's own top probability (at temperature 1) falls below this:
        # an unsure draft is likely rejected, and each extra draft step costs time. Lossless: it
        # only changes how many tokens are proposed, never their distribution.
        self.confidence_stop = confidence_stop
        # Adaptive length (transformers' "heuristic" schedule): +2 after a fully accepted draft,
        # -1 otherwise, within [1, the k the decoder asks for]. Lossless like the confidence stop.
        self.adaptive = adaptive
        self._length = 4
        self._tokens: list[int] = []  # what the draft's cache holds
        self._logits: torch.Tensor | None = None  # [1, draft_vocab] after the last of them

    def _target_space(self, logits: torch.Tensor) -> torch.Tensor:
        """Draft logits ``[1, draft_vocab]`` -> probabilities ``[1, target_vocab]``.

        Rows past the target's vocabulary are cut *before* softmax, so the returned distribution
        is exactly the one the token is drawn from; missing rows get probability 0.
        """
        logits = logits[:, : self.target_vocab_size]
        probs = to_probs(logits, self.sampling)
        pad = self.target_vocab_size - probs.shape[-1]
        return torch.nn.functional.pad(probs, (0, pad)) if pad > 0 else probs

    def _catch_up(self, context: list[int]) -> torch.Tensor:
        keep = common_prefix(self._tokens, context)
        if keep == len(context) == len(self._tokens) and self._logits is not None:
            return self._logits  # nothing new since the last forward (the first draft after prefill)
        keep = min(keep, len(context) - 1)  # re-feed at least one token to get fresh logits
        self.backend.truncate(keep)
        new = torch.tensor(context[keep:], dtype=torch.long, device=self.backend.device)
        logits = self.backend.forward(new, keep=1)  # [1, draft_vocab]
        self._tokens = list(context)
        self._logits = logits
        return logits

    def prefill(self, context: list[int]) -> None:
        self.backend.reset()
        self._tokens = []
        self._logits = None
        self._length = 4
        self._catch_up(context)

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        if self.adaptive:
            k = min(k, self._length)
        if k == 0:
            return Draft(torch.empty(0, dtype=torch.long, device=self.backend.device), None)
        logits = self._catch_up(context)
        tokens: list[torch.Tensor] = []
        rows: list[torch.Tensor] = []
        softmax: list[float] = []  # greedy: how sure the draft was of each token, for the events
        for i in range(k):
            probs = self._target_space(logits)  # [1, target_vocab]
            token = probs.argmax(dim=-1) if self.sampling.greedy else sample(probs, generator)  # [1]
            tokens.append(token)
            rows.append(probs)
            if self.sampling.greedy:
                softmax.append(float(logits[0, : self.target_vocab_size].float().softmax(-1)[token]))
            if i == k - 1:
                break  # the last draft is fed at the next catch-up, together with the correction
            if self.confidence_stop is not None:
                if float(logits.float().softmax(dim=-1).max()) < self.confidence_stop:
                    break
            logits = self.backend.forward(token, keep=1)
            self._tokens.append(int(token))
            self._logits = logits
        return Draft(torch.cat(tokens), torch.cat(rows), softmax=torch.tensor(softmax) if softmax else None)

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        if self.adaptive and n_drafted:
            self._length = self._length + 2 if n_accepted == n_drafted else max(1, self._length - 1)

    def synchronize(self) -> None:
        self.backend.synchronize()
