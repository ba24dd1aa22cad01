"""Remembered results of work that depends on a text alone (the encoder's vectors, the NER's places).

A burst repeats itself: copies of a post that differ only in geotag or profile are decided apart,
but their words are the same, so what is read from the words alone is read once. Thread-safe;
the least recently used text is forgotten first.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Generic, TypeVar

V = TypeVar("V")


class TextMemo(Generic[V]):
    """The values of the last `size` texts."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, texts: Sequence[str]) -> tuple[dict[int, V], dict[str, list[int]]]:
        """The remembered value of each text by its position, and the positions of each text not
        remembered (a text given twice is one entry: it is worked out once)."""
        found: dict[int, V] = {}
        missing: dict[str, list[int]] = {}
        with self._lock:
            for position, text in enumerate(texts):
                value = self._values.get(text)
                if value is None:
                    missing.setdefault(text, []).append(position)
                else:
                    self._values.move_to_end(text)
                    found[position] = value
        return found, missing

    def remember(self, text: str, value: V) -> None:
        with self._lock:
            self._values[text] = value
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
