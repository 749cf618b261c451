"""Run control for the launcher: one training job at a time in a background thread.

No widgets and no parameters here: :class:`RunControl` starts a job in a thread with the
Trainer's prints captured (the notebook's cells stay clean) and transformers' progress bars off,
hands the job the callbacks that report steps and losses and that stop it, and cancels it after
the current optimizer step *with* a checkpoint.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

__all__ = ["RunControl", "ThreadOutput"]


class ThreadOutput:
    """A ``sys.stdout`` / ``sys.stderr`` stand-in that keeps one thread's writes (the Trainer's log
    prints) in a list and passes every other thread's writes through unchanged."""

    def __init__(self, stream, thread: threading.Thread, sink: list[str]) -> None:
        self._stream, self._thread, self._sink = stream, thread, sink

    def write(self, text: str) -> int:
        if threading.current_thread() is self._thread:
            self._sink.append(text)
            return len(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _live_callback(on_begin: Callable[[int], None], on_step: Callable[[int], None],
                   on_loss: Callable[[int, float], None]):
    """A ``TrainerCallback`` reporting the global step at the start (> 0 on resume), after every
    optimizer step, and every logged loss. Built on demand: importing transformers takes seconds."""
    from transformers import TrainerCallback

    class LiveCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            on_begin(int(state.global_step))

        def on_step_end(self, args, state, control, **kwargs):
            on_step(int(state.global_step))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                on_loss(int(state.global_step), float(logs["loss"]))

    return LiveCallback()


class RunControl:
    """Start, cancel and wait for one background job.

    ``start(job, on_begin=..., on_step=..., on_loss=...)`` runs ``job(callbacks)`` in a daemon
    thread; ``callbacks`` (a cancel-able ``StopCallback(save=True)`` and the live reporter) go to
    ``train(config, callbacks=...)``. What the job prints lands in ``output_log``.
    """

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.stop = None  # StopCallback of the current job
        self.output_log: list[str] = []  # what the jobs printed in their threads

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, job: Callable[[list], None], *, on_begin: Callable[[int], None] = lambda step: None,
              on_step: Callable[[int], None] = lambda step: None,
              on_loss: Callable[[int, float], None] = lambda step, loss: None) -> None:
        from creamviz.training import StopCallback

        if self.running:
            raise ValueError("a run is already in progress: cancel it or wait for it to finish")
        self.stop = StopCallback(save=True)  # before the thread starts, so cancel() works at once
        callbacks = [self.stop, _live_callback(on_begin, on_step, on_loss)]
        self.thread = threading.Thread(target=self._run, args=(job, callbacks), name="creamviz-train", daemon=True)
        self.thread.start()

    def cancel(self) -> bool:
        """Ask the job to stop after the current optimizer step (saving a checkpoint there).
        Returns whether a job was running."""
        if not self.running or self.stop is None:
            return False
        self.stop.request()
        return True

    def wait(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self, job: Callable[[list], None], callbacks: list) -> None:
        from transformers.utils import logging as hf_logging

        me = threading.current_thread()
        saved = sys.stdout, sys.stderr
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" bars would pop up in whichever cell runs now
        sys.stdout = ThreadOutput(sys.stdout, me, self.output_log)
        sys.stderr = ThreadOutput(sys.stderr, me, self.output_log)
        try:
            job(callbacks)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
            for name, stream in zip(("stdout", "stderr"), saved, strict=True):
                current = getattr(sys, name)
                if isinstance(current, ThreadOutput) and current._thread is me:
                    setattr(sys, name, stream)
