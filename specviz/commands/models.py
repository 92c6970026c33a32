"""``specviz models``: list the packaged models, or provision them."""

from __future__ import annotations

from typing import Any


def main(args: Any) -> int:
    from rich.console import Console
    from rich.table import Table

    from specviz.models import DEFAULT_DRAFT, DEFAULT_TARGET, ModelError, list_models
    from specviz.render.progress import provision_with_progress

    console = Console()
    if args.pull is not None:
        for name in args.pull or [DEFAULT_TARGET, DEFAULT_DRAFT]:
            try:
                path = provision_with_progress(name, console)
            except ModelError as exc:
                console.print(f"[red]error:[/red] {exc}")
                return 2
            console.print(f"{name}: ready at {path}")
    table = Table(title="packaged models (usable as --target/--draft)")
    for col in ("name", "state", "description", "path"):
        table.add_column(col)
    for row in list_models():
        table.add_row(row["name"], row["state"], row["description"], row["path"])
    console.print(table)
    console.print("Any local checkpoint folder, .gguf file or Hugging Face hub id works too.")
    return 0
