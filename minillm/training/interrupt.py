"""Ctrl-C and SIGTERM during training: finish the step, save, then stop.

A signal can arrive in the middle of an optimizer update, when half of the weights have moved.
So while training runs, SIGINT and SIGTERM only raise a flag; the loop checks it after each whole
step, writes a checkpoint and raises TrainingInterrupted, which names the step and the folder.

    with StopRequests() as stop:
        while ...:
            train_step()
            if stop.requested:
                save(); raise TrainingInterrupted(...)
"""
import signal
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after a whole step; ``step`` and ``out`` say where it was saved."""

    def __init__(self, step, out, saved):
        super().__init__(f"interrupted after step {step}")
        self.step, self.out, self.saved = step, out, saved


class StopRequests:
    """Within the block, SIGINT and SIGTERM set ``requested`` instead of stopping the program.

    Only the main thread may install signal handlers; elsewhere (a notebook's worker thread)
    the block changes nothing and a signal behaves as usual.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.requested, self.saved = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                if hasattr(signal, name):
                    number = getattr(signal, name)
                    self.saved[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame):
        if self.requested is not None:           # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.requested = signal.Signals(number).name

    def __exit__(self, *exc):
        for number, handler in self.saved.items():
            signal.signal(number, handler)
        self.saved = {}
        return False
