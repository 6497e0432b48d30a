"""Progress and time left over a series of runs (recipe members, sweep runs), with tqdm."""

from __future__ import annotations

import sys

from tqdm import tqdm


class RunProgress:
    """A tqdm bar over runs (to stderr) with the time left at the mean pace so far."""

    def __init__(self, total: int, description: str):
        self.bar = tqdm(total=total, desc=description, unit="run", file=sys.stderr,
                        dynamic_ncols=True, smoothing=0)

    def update(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

