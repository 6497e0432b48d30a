import os
import signal
import traceback

import keras
import numpy as np
import pytest

from kaggle_digits.training.callbacks import InterruptAtBatchEnd


@pytest.fixture
def python_ctrl_c():
    """SIGINT as a terminal's Python has it (an xdist worker or a background shell may not)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class CtrlCAt(keras.callbacks.Callback):
    """Presses Ctrl-C at the start of the given batches, then counts the batches that end."""

    def __init__(self, batches):
        super().__init__()
        self.batches, self.ended = set(batches), 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch in self.batches:
            os.kill(os.getpid(), signal.SIGINT)

    def on_train_batch_end(self, batch, logs=None):
        self.ended += 1


def fit_with(callbacks):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    interrupt = InterruptAtBatchEnd()
    with interrupt:
        model.fit(np.zeros((64, 4)), np.zeros(64, dtype=int), batch_size=8, epochs=3,
                  verbose=0, callbacks=[interrupt, *callbacks])
    return interrupt


def test_ctrl_c_in_fit_is_raised_at_the_end_of_the_batch_it_came_in(python_ctrl_c):
    pressing = CtrlCAt(batches={2})
    with pytest.raises(KeyboardInterrupt) as raised:
        fit_with([pressing])
    # Not in the middle of the batch (here: the callback that pressed it), but at its end.
    assert traceback.extract_tb(raised.tb)[-1].name == "_raise_if_requested"
    assert pressing.ended == 2  # Batches 0 and 1; batch 2's end hook never ran (it raised).
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_interrupts_at_once(python_ctrl_c):
    pressing = CtrlCAt(batches={1})
    original = pressing.on_train_batch_begin

    def twice(batch, logs=None):
        original(batch, logs)
        original(batch, logs)

    pressing.on_train_batch_begin = twice
    with pytest.raises(KeyboardInterrupt) as raised:
        fit_with([pressing])
    assert traceback.extract_tb(raised.tb)[-1].name == "_request"
    assert pressing.ended == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_fit_without_ctrl_c_is_untouched_and_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        interrupt = fit_with([])
        assert interrupt.requested is False
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
