"""Progress over long loops: a tqdm bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm import tqdm

LINES = 20
"""How many plain progress lines a whole loop prints when stderr is not a terminal."""


class Progress:
    """`update(position, describe)` advances to `position`; `describe()` builds the status text
    and is called only when it is shown (on a GPU, reading values syncs the device)."""

    def __init__(
        self, total: int, start: int = 0, enabled: bool = True, unit: str = "epoch", refresh=50
    ):
        self.total, self.unit, self.refresh, self.enabled = total, unit, refresh, enabled
        self.tty = sys.stderr.isatty()
        self.every = max(1, total // LINES)
        self.last_line = start
        self.started = time.perf_counter()
        show_bar = enabled and self.tty
        self.bar = tqdm(total=total, initial=start, unit=unit, disable=not show_bar)

    def update(self, position: int, describe: Callable[[], str]) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.bar.update(position - self.bar.n)
            if position % self.refresh == 0:
                self.bar.set_postfix_str(describe(), refresh=False)
        elif position - self.last_line >= self.every:
            self._line(position, describe)

    def close(self, describe: Callable[[], str]) -> None:
        if self.enabled and not self.tty and self.last_line < self.total:
            self._line(self.total, describe)
        self.bar.close()

    def _line(self, position: int, describe: Callable[[], str]) -> None:
        self.last_line = position
        elapsed = time.perf_counter() - self.started
        text = f"{self.unit} {position}/{self.total}  {describe()}  [{elapsed:.0f}s]"
        print(text, file=sys.stderr, flush=True)
