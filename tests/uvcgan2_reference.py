"""UVCGAN2's body queue, re-implemented for the tests.

The reference is github.com/LS4GAN/uvcgan2 at commit 871b2b931f0b6c1fa012a3d658e830f3f4c6023c,
uvcgan2/torch/queue.py. Shared by tests/plugins/test_uvcgan2.py (the queue against ours) and
tests/test_uvcgan2_method.py (one training step against the reference's).
"""

from __future__ import annotations

import torch


class RefFastQueue:
    """uvcgan2/torch/queue.py's FastQueue."""

    def __init__(self, size):
        self._queue, self._size, self._curr_idx, self._full = None, size, 0, False

    def push(self, x):
        if self._queue is None:
            self._queue = torch.empty((self._size, *x.shape[1:]), dtype=x.dtype)
        n = x.shape[0]
        n_avail_to_end = self._size - self._curr_idx
        if n > self._size:
            x, n = x[-self._size :, ...], self._size
        if n_avail_to_end <= n:
            self._queue[self._curr_idx : self._size, ...] = x[:n_avail_to_end, ...].detach()
            self._curr_idx, self._full = 0, True
            if n_avail_to_end < n:
                self.push(x[n_avail_to_end:, ...])
        else:
            self._queue[self._curr_idx : self._curr_idx + n, ...] = x.detach()
            self._curr_idx += n

    def query(self):
        if self._queue is None:
            return None
        return self._queue if self._full else self._queue[: self._curr_idx, ...]
