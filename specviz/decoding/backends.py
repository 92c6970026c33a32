"""Causal language models behind a small protocol that hides the KV cache.

A backend holds the tokens it has seen in its cache. ``forward(tokens)`` appends ``tokens`` and
returns their logits; ``truncate(length)`` rolls the cache back (after a rejection) by moving the
write position, never by re-encoding the context (``DynamicCache.crop`` for transformers).

Token trees (``TreeLM``, both backends here): ``forward_tree(tokens, parents)`` appends the nodes
of a tree and scores all of them in one forward. Everything appended since the last committed
length ``base`` is the *tree region*; its nodes are numbered 0, 1, ... in the order they were
appended, over one or several ``forward_tree`` calls (a draft model grows its tree one depth per
call). ``parents[i]`` is the region index of node i's parent, or -1 when node i follows the
committed prefix; parents come before children. Node i attends to the committed prefix, its own
ancestors and itself, and sits at position ``base + depth(i)``, so its logits are exactly those
of feeding its own path after the prefix. ``keep_path(nodes)`` then keeps one root-to-descendant
path: the cache holds ``base + len(nodes)`` tokens, as if those tokens had been fed one by one.
While a tree is open, ``length`` counts every cached token (base + region nodes); a plain
``forward`` is refused until ``keep_path`` or ``truncate`` closes the tree (it would attend to
every branch); ``truncate(base)`` drops the whole region, and ``truncate`` into the region keeps
its first nodes when they form one path.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch


class CausalLM(Protocol):
    vocab_size: int
    device: torch.device

    @property
    def length(self) -> int:
        """Tokens currently held in the cache."""
        ...

    def forward(self, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        """Append ``tokens`` ``[n]`` and return logits ``[keep or n, vocab]`` of the last positions."""
        ...

    def truncate(self, length: int) -> None:
        """Forget everything after the first ``length`` tokens."""
        ...

    def reset(self) -> None: ...

    def synchronize(self) -> None:
        """Wait for queued device work, so a clock read measures the work itself."""
        ...


@runtime_checkable
class TreeLM(CausalLM, Protocol):
    """A causal LM that can also score a token tree in one forward (see the module docstring)."""

    def forward_tree(
        self, tokens: torch.Tensor, parents: Sequence[int], keep: int | None = None
    ) -> torch.Tensor:
        """Append tree nodes ``tokens`` ``[n]`` and return logits ``[n, vocab]`` (or the last ``keep`` rows).

        The nodes belong to the *tree region*: everything appended since the last committed length
        ``base`` (set by the first forward_tree call after any forward/truncate/keep_path/reset; i.e. the
        region starts at ``self.length`` when a new tree starts). Nodes of the region are numbered 0, 1, ... in the
        order they were appended, over possibly several forward_tree calls (a draft model grows its tree one
        depth per call). ``parents[i]`` is the region index of node i's parent, or -1 if node i follows the
        committed prefix directly; a parent always comes before its child. Node i sees the committed prefix
        and its own ancestors and itself, nothing else; its position id is ``base + depth(i)`` (depth 0 for a
        node whose parent is -1).
        """
        ...

    def keep_path(self, nodes: Sequence[int]) -> None:
        """Keep only region nodes ``nodes`` (a root-to-descendant path, each the parent of the next, the first
        with parent -1; may be empty), in that order, after the committed prefix: the cache then holds
        ``base + len(nodes)`` tokens, exactly as if those tokens had been fed with ``forward`` one by one."""
        ...


class _TreeRegion:
    """The open tree of a backend: where it starts in the cache, and each node's parent and depth.

    Shared by every backend so that they validate trees and paths the same way.
    """

    def __init__(self, base: int) -> None:
        self.base = base  # committed tokens before the region
        self.parents: list[int] = []  # region index of each node's parent, -1: follows the prefix
        self.depths: list[int] = []  # 0 for a child of the prefix

    def __len__(self) -> int:
        return len(self.parents)

    def grow(self, parents: Sequence[int], n: int) -> range:
        """Add ``n`` nodes with ``parents``; returns their region indices. Validates before changing anything."""
        parents = [int(p) for p in parents]
        if len(parents) != n:
            raise ValueError(
                f"forward_tree got {n} tokens but {len(parents)} parents: give one parent per token"
            )
        first = len(self.parents)
        for i, p in enumerate(parents, start=first):
            if not -1 <= p < i:
                raise ValueError(
                    f"tree node {i} has parent {p}: a parent must be -1 (the committed prefix) or an "
                    f"earlier node of the tree (0..{i - 1})"
                )
        for p in parents:
            self.parents.append(p)
            self.depths.append(0 if p < 0 else self.depths[p] + 1)
        return range(first, first + n)

    def path_to(self, node: int) -> list[int]:
        """Region indices from the top of the tree down to ``node`` inclusive: all that ``node`` sees of the region."""
        path: list[int] = []
        while node >= 0:
            path.append(node)
            node = self.parents[node]
        return path[::-1]

    def check_path(self, nodes: Sequence[int]) -> list[int]:
        """``nodes`` as ints, once checked to be a root-to-descendant path of this tree."""
        path = [int(v) for v in nodes]
        for j, v in enumerate(path):
            if not 0 <= v < len(self):
                raise ValueError(f"keep_path: node {v} is not in the tree (its nodes are 0..{len(self) - 1})")
            above = path[j - 1] if j else -1
            if self.parents[v] != above:
                raise ValueError(
                    f"keep_path needs a path from the top of the tree down, each node the parent of the next: "
                    f"node {v}'s parent is {self.parents[v]}, not {above}"
                )
        return path

    def is_chain(self) -> bool:
        """Whether every node follows the one before it (the tree is a single path in append order)."""
        return all(p == i - 1 for i, p in enumerate(self.parents))

    def leading_chain(self, k: int) -> list[int]:
        """Nodes 0..k-1, checked to form one path (what ``truncate(base + k)`` may keep)."""
        if any(self.parents[j] != j - 1 for j in range(k)):
            raise ValueError(
                f"cannot truncate into a token tree: its first {k} nodes are not one path; "
                "use keep_path(nodes) to keep a path, or truncate(base) to drop the tree"
            )
        return list(range(k))


def _tree_closed(tree: _TreeRegion | None) -> None:
    if tree is not None:
        raise ValueError(
            "a token tree is open: call keep_path(nodes) or truncate(length) before a plain forward "
            "(it would attend to every branch)"
        )


class HFBackend:
    """A transformers causal LM with a DynamicCache that supports rollback and token trees."""

    def __init__(self, model: torch.nn.Module, vocab_size: int | None = None) -> None:
        from transformers import DynamicCache

        self.model = model.eval()
        self._cache_cls = DynamicCache
        self.device = next(model.parameters()).device
        # Padded embedding rows (Qwen pads its vocab to a multiple of 128) stay part of the
        # distribution: the target's probabilities must be the ones plain decoding samples from.
        self.vocab_size = int(vocab_size or model.config.vocab_size)
        self._cache = DynamicCache(config=model.config)
        self._length = 0
        self._tree: _TreeRegion | None = None
        # transformers 5.x renamed the forward argument ``past_key_values`` to ``cache``.
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    @property
    def length(self) -> int:
        return self._length

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        _tree_closed(self._tree)
        n = int(tokens.shape[0])
        if n == 0:
            raise ValueError("forward needs at least one token")
        keep = n if keep is None else keep
        input_ids = tokens.to(self.device).view(1, n)  # [1, n]
        positions = torch.arange(self._length, self._length + n, device=self.device)
        out = self.model(
            input_ids=input_ids,
            position_ids=positions.view(1, n),
            use_cache=True,
            logits_to_keep=keep,
            **{self._cache_arg: self._cache},
        )
        self._length += n
        return out.logits[0, -keep:, : self.vocab_size]  # [keep, vocab]

    def _tree_mask_additive(self) -> bool:
        """Whether this model's attention takes the tree mask as an additive float (else boolean).

        transformers (checked in 5.24) passes a 4D ``attention_mask`` through ``create_causal_mask``
        unchanged; ``sdpa`` hands it to ``scaled_dot_product_attention`` (boolean: True = attend)
        and ``eager`` adds it to the scores (so it must be 0 / dtype-min floats). Other kernels
        (flash, flex, paged) take no dense mask, and sliding-window or quantised cache layers would
        keep or drop rows that ``keep_path`` does not know about: both are refused here.
        """
        from transformers.cache_utils import DynamicLayer

        impl = getattr(self.model.config, "_attn_implementation", None)
        if impl not in ("sdpa", "eager"):
            raise ValueError(
                f"token trees need a dense attention mask, which attention implementation {impl!r} does not "
                "take: load the model with attn_implementation='sdpa' (or 'eager')"
            )
        if any(type(layer) is not DynamicLayer for layer in self._cache.layers):
            kinds = sorted({type(layer).__name__ for layer in self._cache.layers})
            raise ValueError(
                f"token trees need plain full-attention cache layers; this model's cache has {', '.join(kinds)} "
                "(sliding-window or hybrid attention): use chains (a plain draft) with this model"
            )
        return impl == "eager"

    @torch.inference_mode()
    def forward_tree(
        self, tokens: torch.Tensor, parents: Sequence[int], keep: int | None = None
    ) -> torch.Tensor:
        """See ``TreeLM.forward_tree``: one forward over ``n`` tree nodes with a tree attention mask."""
        n = int(tokens.shape[0])
        if tokens.dim() != 1 or n == 0:
            raise ValueError("forward_tree needs a 1-D tensor of at least one token")
        additive = self._tree_mask_additive()
        tree = self._tree if self._tree is not None else _TreeRegion(self._length)
        new = tree.grow(parents, n)  # validated before the cache changes
        self._tree = tree
        keep = n if keep is None else keep
        mask = self._tree_mask(tree, new, additive)  # [n, length + n] or None
        # Position = base + depth: a node's rotary position is where it would sit on its own path.
        positions = torch.tensor([tree.base + tree.depths[i] for i in new], device=self.device)  # [n]
        out = self.model(
            input_ids=tokens.to(self.device).view(1, n),
            attention_mask=None if mask is None else mask.view(1, 1, *mask.shape),
            position_ids=positions.view(1, n),
            use_cache=True,
            logits_to_keep=keep,
            **{self._cache_arg: self._cache},
        )
        self._length += n
        return out.logits[0, -keep:, : self.vocab_size]  # [keep, vocab]

    def _tree_mask(self, tree: _TreeRegion, new: range, additive: bool) -> torch.Tensor | None:
        """Attention mask ``[n, length + n]`` of the new nodes ``new``: None when it is the causal one.

        Each new node sees the whole committed prefix and, of the region, only its own path. The
        mask costs nothing measurable: on Qwen2.5-Coder-0.5B (float32, oneDNN-packed, sdpa, 1
        thread, this project's 2-core CPU; prefix 128 or 1024) a forward_tree over a random tree
        of n = 8..64 nodes took 0.94-1.02x the CPU time of a plain forward over n tokens; building
        the mask took 0.07-0.28 ms of a 340-860 ms forward.
        """
        if tree.is_chain():
            # A chain's tree mask is the causal mask: let the model build its own, so a
            # chain-shaped tree runs exactly the kernels of a plain forward (one row: no mask).
            return None
        n, kv = len(new), self._length + len(new)  # keys: the cache, then the new nodes
        rows: list[int] = []
        cols: list[int] = []
        for r, node in enumerate(new):
            for j in tree.path_to(node):
                rows.append(r)
                cols.append(tree.base + j)
        visible = torch.zeros(n, kv, dtype=torch.bool, device=self.device)  # [n, kv]
        visible[:, : tree.base] = True
        visible[torch.tensor(rows, device=self.device), torch.tensor(cols, device=self.device)] = True
        if not additive:
            return visible
        dtype = self.model.get_input_embeddings().weight.dtype
        return torch.zeros(n, kv, dtype=dtype, device=self.device).masked_fill_(
            ~visible, torch.finfo(dtype).min
        )

    @torch.inference_mode()  # the cached keys are inference tensors: edit them in place only in this mode
    def keep_path(self, nodes: Sequence[int]) -> None:
        """See ``TreeLM.keep_path``: move the path's keys/values next to the prefix, then crop the rest.

        Only the kept rows move (``index_copy_`` in place); the committed prefix is never copied.
        A path that is already in place (nodes 0..k-1, e.g. a chain) moves nothing.
        """
        tree = self._tree
        if tree is None:
            if len(nodes):
                raise ValueError("keep_path: no token tree is open (call forward_tree first)")
            return
        path = tree.check_path(nodes)
        base, k = tree.base, len(path)
        if path != list(range(k)):
            # Path indices only grow (parents come first), so row base + j is never a source
            # still to be read; the gathered copy makes that moot anyway.
            src = torch.tensor(path) + base
            dst = torch.arange(base, base + k)
            for layer in self._cache.layers:
                if not layer.is_initialized:
                    continue
                for kv in (layer.keys, layer.values):  # [batch, heads, seq, head_dim]
                    at = kv.device
                    kv.index_copy_(2, dst.to(at), kv.index_select(2, src.to(at)))
        self._tree = None
        self._crop(base + k)

    def _crop(self, length: int) -> None:
        if length < self._length:
            # A negative argument means "remove this many tokens" in every transformers version
            # since 4.38; 5.x refuses the older absolute-length form.
            self._cache.crop(length - self._length)
            self._length = length

    def truncate(self, length: int) -> None:
        if length < 0 or length > self._length:
            raise ValueError(f"cannot truncate a cache of {self._length} tokens to {length}")
        if self._tree is not None and length > self._tree.base:
            self.keep_path(self._tree.leading_chain(length - self._tree.base))
            return
        self._tree = None
        self._crop(length)

    def reset(self) -> None:
        self._cache = self._cache_cls(config=self.model.config)
        self._length = 0
        self._tree = None

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()


class TableLM:
    """A tiny exact "model" for tests: logits are a fixed function of the last ``order`` tokens.

    Its cache is the list of tokens seen, so rollback bugs in the decoder show up as wrong
    distributions, and every distribution is known exactly for analytic checks. In a token tree a
    node's logits are a function of the last ``order`` tokens on its own path (prefix, ancestors,
    itself), as a transformer with a tree mask computes them.
    """

    def __init__(self, vocab_size: int, order: int, seed: int, sharpness: float = 2.0) -> None:
        self.vocab_size = vocab_size
        self.order = order
        self.device = torch.device("cpu")
        gen = torch.Generator().manual_seed(seed)
        self._table = sharpness * torch.randn(vocab_size**order, vocab_size, generator=gen)  # [V^order, V]
        self._tokens: list[int] = []  # the prefix, then the open tree's nodes in region order
        self._tree: _TreeRegion | None = None
        self.forward_calls = 0  # tree forwards included: each is one model forward

    @property
    def length(self) -> int:
        return len(self._tokens)

    def logits_for(self, context: list[int]) -> torch.Tensor:
        """Logits ``[vocab]`` for the token that follows ``context``."""
        key = 0
        for t in ([0] * self.order + context)[-self.order :]:
            key = key * self.vocab_size + t
        return self._table[key]

    def forward(self, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        _tree_closed(self._tree)
        self.forward_calls += 1
        rows = []
        for t in tokens.tolist():
            self._tokens.append(int(t))
            rows.append(self.logits_for(self._tokens))
        out = torch.stack(rows)  # [n, vocab]
        return out if keep is None else out[-keep:]

    def forward_tree(
        self, tokens: torch.Tensor, parents: Sequence[int], keep: int | None = None
    ) -> torch.Tensor:
        """See ``TreeLM.forward_tree``."""
        n = int(tokens.shape[0])
        if tokens.dim() != 1 or n == 0:
            raise ValueError("forward_tree needs a 1-D tensor of at least one token")
        tree = self._tree if self._tree is not None else _TreeRegion(len(self._tokens))
        new = tree.grow(parents, n)
        self._tree = tree
        self.forward_calls += 1
        self._tokens.extend(int(t) for t in tokens.tolist())
        prefix = self._tokens[max(0, tree.base - self.order) : tree.base]  # all a row can see of it
        rows = [self.logits_for(prefix + [self._tokens[tree.base + j] for j in tree.path_to(i)]) for i in new]
        out = torch.stack(rows)  # [n, vocab]
        return out if keep is None else out[-keep:]

    def keep_path(self, nodes: Sequence[int]) -> None:
        """See ``TreeLM.keep_path``."""
        tree = self._tree
        if tree is None:
            if len(nodes):
                raise ValueError("keep_path: no token tree is open (call forward_tree first)")
            return
        path = tree.check_path(nodes)
        kept = [self._tokens[tree.base + j] for j in path]
        del self._tokens[tree.base :]
        self._tokens.extend(kept)
        self._tree = None

    def truncate(self, length: int) -> None:
        if length < 0 or length > len(self._tokens):
            raise ValueError(f"cannot truncate a cache of {len(self._tokens)} tokens to {length}")
        if self._tree is not None and length > self._tree.base:
            self.keep_path(self._tree.leading_chain(length - self._tree.base))
            return
        self._tree = None
        del self._tokens[length:]

    def reset(self) -> None:
        self._tokens = []
        self._tree = None

    def synchronize(self) -> None:
        pass
