"""The benchmark's prompt suite, written for specviz (no downloaded data).

Each category stresses drafting differently: code completion and code editing are predictable
(editing repeats its input, which prompt lookup exploits), chat explanation and translation are
less so, summarisation copies phrases from its passage, arithmetic mixes copying and computing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BenchPrompt:
    category: str
    name: str
    text: str
    chat: bool = True


_SNIPPET_A = """def moving_average(values, window):
    if window <= 0:
        raise ValueError("window must be positive")
    result = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        if i >= window - 1:
            result.append(total / window)
    return result
"""

_SNIPPET_B = """class Inventory:
    def __init__(self):
        self.items = {}

    def add(self, name, count):
        self.items[name] = self.items.get(name, 0) + count

    def remove(self, name, count):
        if self.items.get(name, 0) < count:
            raise KeyError(name)
        self.items[name] -= count

    def total(self):
        return sum(self.items.values())
"""

_SNIPPET_C = """function parseQuery(query) {
  const params = {};
  for (const part of query.replace(/^\\?/, "").split("&")) {
    if (!part) continue;
    const [key, value] = part.split("=");
    params[decodeURIComponent(key)] = decodeURIComponent(value || "");
  }
  return params;
}
"""

_PASSAGE_A = (
    "The city council met on Tuesday to discuss the new bicycle lanes planned for the river district. "
    "Supporters said the lanes would reduce traffic and make cycling safer for children going to school. "
    "Shop owners worried that removing parking spaces would hurt their business during the winter months. "
    "After three hours of debate the council agreed to build the lanes in two phases and to review parking "
    "after the first phase is finished next spring."
)
_PASSAGE_B = (
    "Honeybees communicate the location of food through a behaviour called the waggle dance. A forager "
    "returning to the hive moves in a figure-eight pattern; the angle of the straight run relative to "
    "vertical shows the direction of the food relative to the sun, and the duration of the run shows the "
    "distance. Other bees follow the dancer, learn the route, and fly out to the same flowers."
)
_PASSAGE_C = (
    "Version 2.0 of the library drops support for Python 3.8, replaces the synchronous client with an "
    "asynchronous one, and renames the configuration option 'timeout' to 'request_timeout'. Existing code "
    "keeps working through a compatibility layer that prints a deprecation warning; the layer will be "
    "removed in version 3.0. The release also fixes a memory leak in long-running connections."
)

SUITE: tuple[BenchPrompt, ...] = (
    BenchPrompt("code_completion", "binary_search", "def binary_search(items, target):\n    ", chat=False),
    BenchPrompt(
        "code_completion",
        "lru_cache",
        "class LRUCache:\n    def __init__(self, capacity: int):\n        ",
        chat=False,
    ),
    BenchPrompt("code_completion", "csv_stats", "import csv\n\n\ndef column_means(path):\n    ", chat=False),
    BenchPrompt(
        "code_editing",
        "rename_total",
        f"Rewrite this function, renaming the variable total to running_sum. Output only the code.\n\n{_SNIPPET_A}",
    ),
    BenchPrompt(
        "code_editing",
        "add_docstrings",
        f"Return this class unchanged except that the method remove raises ValueError instead of KeyError. "
        f"Output only the code.\n\n{_SNIPPET_B}",
    ),
    BenchPrompt(
        "code_editing",
        "js_to_ts",
        f"Add TypeScript type annotations to this function and change nothing else. Output only the code.\n\n"
        f"{_SNIPPET_C}",
    ),
    BenchPrompt("chat_explanation", "mutex", "Explain what a mutex is and when you would use one."),
    BenchPrompt("chat_explanation", "gc", "How does garbage collection work in Python?"),
    BenchPrompt("chat_explanation", "http", "What happens when I type a URL into a browser and press enter?"),
    BenchPrompt("summarisation", "council", f"Summarise this passage in two sentences.\n\n{_PASSAGE_A}"),
    BenchPrompt("summarisation", "bees", f"Summarise this passage in two sentences.\n\n{_PASSAGE_B}"),
    BenchPrompt("summarisation", "release", f"Summarise these release notes for a user.\n\n{_PASSAGE_C}"),
    BenchPrompt(
        "translation",
        "fr",
        "Translate into French: The weather is nice today, so we will walk to the market.",
    ),
    BenchPrompt(
        "translation", "de", "Translate into German: Please close the window before you leave the office."
    ),
    BenchPrompt(
        "translation",
        "es",
        "Translate into Spanish: The library opens at nine and closes at six on weekdays.",
    ),
    BenchPrompt(
        "arithmetic",
        "apples",
        "Solve step by step: A shop sells apples at 3 dollars per kilo. Ana buys 4 kilos and pays with "
        "a 20 dollar note. How much change does she get?",
    ),
    BenchPrompt(
        "arithmetic",
        "train",
        "Solve step by step: A train travels 180 km in 2.5 hours. What is its average speed?",
    ),
    BenchPrompt(
        "arithmetic", "percent", "Solve step by step: What is 15 percent of 240, and what is 240 minus that?"
    ),
)

CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(p.category for p in SUITE))


def load_prompts(path: Path) -> list[BenchPrompt]:
    """Your own prompts, one JSON object a line: ``{"category": "...", "prompt": "..."}``, with an
    optional ``"name"`` and ``"chat"`` (default true: wrapped in the target's chat template).

    Measuring on prompts the settings were not tuned on is the honest test of a drafter. Raises
    ValueError naming the file and line of anything that is not such an object.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--prompts {path}: cannot read it as UTF-8 text ({exc})") from None
    prompts: list[BenchPrompt] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"--prompts {path}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise ValueError(f'{where}: expected an object like {{"category": "code", "prompt": "..."}}')
        category, text, chat = item.get("category"), item.get("prompt"), item.get("chat", True)
        if not isinstance(category, str) or not category.strip() or "," in category:
            raise ValueError(f'{where}: "category" must be a non-empty name without commas')
        if not isinstance(text, str) or not text:
            raise ValueError(f'{where}: "prompt" must be a non-empty string')
        if not isinstance(chat, bool):
            raise ValueError(f'{where}: "chat" must be true or false')
        name = item.get("name") or f"{category}-{len(prompts) + 1}"
        prompts.append(BenchPrompt(category=category.strip(), name=str(name), text=text, chat=chat))
    if not prompts:
        raise ValueError(f"--prompts {path}: no prompts in it")
    return prompts
