"""Word-wrapping of a growing token stream, incrementally: appending or truncating re-wraps only the tail.

Pure Python (no Textual) so the wrapping can be tested on its own. A token is a *piece*; lines break
between pieces where possible, inside a piece only when it is wider than the line, and always at "\n".
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from rich.cells import cell_len


@dataclass(frozen=True)
class Piece:
    """A run of text with one status, belonging to one iteration (-1 for the prompt)."""

    text: str
    status: str
    iteration: int


@dataclass(frozen=True)
class Segment:
    text: str
    status: str
    iteration: int
    cells: int


class StreamLayout:
    """Pieces wrapped to a width; ``lines[y]`` is a list of segments."""

    def __init__(self, width: int = 80) -> None:
        self.width = max(1, width)
        self.pieces: list[Piece] = []
        self.lines: list[list[Segment]] = []
        # Where each line starts: (piece index, character offset inside that piece).
        self._starts: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self.lines)

    def set_width(self, width: int) -> None:
        width = max(1, width)
        if width != self.width:
            self.width = width
            self._rewrap_from(0)

    def append(self, pieces: Iterable[Piece]) -> int:
        """Add pieces at the end; returns the first line whose content changed."""
        before = len(self.pieces)
        self.pieces.extend(pieces)
        if len(self.pieces) == before:
            return len(self.lines)
        first = max(0, len(self.lines) - 1)
        self._rewrap_from(first)
        return first

    def truncate(self, n_pieces: int) -> int:
        """Keep the first ``n_pieces`` pieces; returns the first line whose content changed."""
        if n_pieces >= len(self.pieces):
            return len(self.lines)
        del self.pieces[n_pieces:]
        first = max(0, bisect_left(self._starts, (n_pieces, 0)) - 1)
        self._rewrap_from(first)
        return first

    def clear(self) -> None:
        self.pieces.clear()
        self.lines.clear()
        self._starts.clear()

    def locate(self, y: int, x: int) -> Segment | None:
        """The segment at cell ``x`` of line ``y``, if any (for mouse clicks)."""
        if not 0 <= y < len(self.lines):
            return None
        offset = 0
        for segment in self.lines[y]:
            if offset <= x < offset + segment.cells:
                return segment
            offset += segment.cells
        return None

    def line_of_iteration(self, iteration: int) -> int | None:
        """The first line showing any piece of ``iteration`` (lines are ordered by iteration)."""
        for y, line in enumerate(self.lines):
            if any(s.iteration == iteration for s in line):
                return y
        return None

    def _rewrap_from(self, first: int) -> None:
        start = self._starts[first] if first < len(self._starts) else (0, 0)
        del self.lines[first:]
        del self._starts[first:]
        width = self.width
        line: list[Segment] = []
        used = 0
        line_start = start

        def emit(next_start: tuple[int, int]) -> None:
            nonlocal line, used, line_start
            self.lines.append(line)
            self._starts.append(line_start)
            line, used, line_start = [], 0, next_start

        first_piece, first_offset = start
        for index in range(first_piece, len(self.pieces)):
            piece = self.pieces[index]
            offset = first_offset if index == first_piece else 0
            text = piece.text
            while offset < len(text):
                newline = text.find("\n", offset)
                end = len(text) if newline < 0 else newline
                while offset < end:
                    chunk = text[offset:end]
                    cells = cell_len(chunk)
                    if used + cells <= width:
                        line.append(Segment(chunk, piece.status, piece.iteration, cells))
                        used += cells
                        offset = end
                    elif line and cells <= width:
                        emit((index, offset))
                    else:
                        fit = _fit(chunk, width - used)
                        if fit == 0 and line:
                            emit((index, offset))
                            continue
                        # A character wider than the whole line still has to go somewhere.
                        fit = max(fit, 1)
                        part = chunk[:fit]
                        line.append(Segment(part, piece.status, piece.iteration, cell_len(part)))
                        offset += fit
                        emit((index, offset))
                if newline >= 0:
                    offset = newline + 1
                    emit((index, offset))
        if self.pieces:
            self.lines.append(line)
            self._starts.append(line_start)


def _fit(text: str, cells: int) -> int:
    """How many leading characters of ``text`` fit in ``cells`` cells."""
    used = 0
    for i, ch in enumerate(text):
        used += cell_len(ch)
        if used > cells:
            return i
    return len(text)
