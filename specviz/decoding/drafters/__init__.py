"""Drafters propose tokens for the target to verify; one drafter per file.

- :mod:`.base`: the contract (``Draft``, ``Drafter``).
- :mod:`.model`: a smaller model with the target's tokenizer.
- :mod:`.ngram`: prompt lookup, no model.
- :mod:`.cross_tokenizer`: a draft model with another tokenizer (through text, or token-level intersection).
- :mod:`.paced`: automatic γ around any of them.
"""

from specviz.decoding.drafters.base import Draft, Drafter
from specviz.decoding.drafters.model import ModelDrafter
from specviz.decoding.drafters.ngram import NgramDrafter

__all__ = ["Draft", "Drafter", "ModelDrafter", "NgramDrafter"]
