"""The bench's methods: names, which specviz drafter each runs, and which chain each tree extends.

Torch-free, so the command line can check a user's ``--methods`` before any model loads.
"""

from __future__ import annotations

from specviz.decoding.settings import GammaChoice

METHODS = (
    "plain",
    "specviz_model",
    "specviz_ngram",
    "specviz_tree",
    "specviz_lookup_tree",
    "specviz_hybrid",
    "hf_assisted",
    "hf_prompt_lookup",
)
# The specviz speculative methods and the RunSettings drafter each one runs.
DRAFTER = {
    "specviz_model": "model",
    "specviz_ngram": "ngram",
    "specviz_tree": "tree",
    "specviz_lookup_tree": "lookup-tree",
    "specviz_hybrid": "hybrid",
}
SPECULATIVE = tuple(DRAFTER)
# Token-tree methods: their γ is the node budget per iteration (or "auto": chosen each iteration).
TREE_METHODS = ("specviz_tree", "specviz_lookup_tree", "specviz_hybrid")
# The chain each tree extends (issue 12: a tree must never be slower than it). The hybrid's model
# branches are the draft model's, so its chain is the draft model's too.
CHAIN_OF = {
    "specviz_tree": "specviz_model",
    "specviz_lookup_tree": "specviz_ngram",
    "specviz_hybrid": "specviz_model",
}
# Methods that spend draft-model forwards (the cost model charges them a draft step each).
USES_DRAFT_MODEL = ("specviz_model", "specviz_tree", "specviz_hybrid")
# Methods that load the draft model at all (transformers' assisted generation uses it too).
NEEDS_DRAFT = (*USES_DRAFT_MODEL, "hf_assisted")

# The node budget the bench gives trees when it is not told (--quick, and the default CLI run):
# tuned on the shipped suite, greedy, default pair, 2-core CPU (docs/benchmarks.md, "Token trees").
DEFAULT_TREE_NODES = 16
# The full bench's node-budget sweep.
TREE_NODE_SWEEP: tuple[GammaChoice, ...] = (8, 16, 32, "auto")
