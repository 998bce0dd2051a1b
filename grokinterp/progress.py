"""Progress over long loops: a tqdm bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LINES = 20
"""How many plain progress lines a whole run prints when stderr is not a terminal."""


class Progress:
    """Shows epoch, train and test loss. `values` are (train_loss, test_loss, train_acc,
    test_acc, ...) per run; the first run's are shown. Reading them syncs a GPU, so it happens
    only every `refresh` steps."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True, refresh: int = 50):
        self.total, self.refresh, self.enabled = total, refresh, enabled
        self.tty = sys.stderr.isatty()
        self.every = max(1, total // LINES)
        self.started = time.perf_counter()
        self.bar = tqdm(
            total=total, initial=start, unit="epoch", disable=not (enabled and self.tty)
        )

    def update(self, epoch: int, values) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.bar.update(1)
            if epoch % self.refresh == 0:
                self.bar.set_postfix_str(self._describe(values), refresh=False)
        elif epoch % self.every == 0:
            self._line(epoch, values)

    def close(self, values) -> None:
        if self.enabled and not self.tty:
            self._line(self.total, values)
        self.bar.close()

    def _line(self, epoch: int, values) -> None:
        elapsed = time.perf_counter() - self.started
        print(
            f"epoch {epoch}/{self.total}  {self._describe(values)}  [{elapsed:.0f}s]",
            file=sys.stderr,
            flush=True,
        )

    @staticmethod
    def _describe(values) -> str:
        train_loss, test_loss, train_acc, test_acc = (float(x) for x in values[0, :4])
        return (
            f"train_loss {train_loss:.3g}  test_loss {test_loss:.3g}  "
            f"train_acc {train_acc:.3f}  test_acc {test_acc:.3f}"
        )
