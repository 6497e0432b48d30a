import numpy as np
import pytest
from helpers import digit_images

from kaggle_digits.data.augment import EpochAugmenter, augment_epoch, build_augmenter


def test_augmenter_moves_ink_only_a_little():
    image = digit_images(1)[0]
    warped = build_augmenter(seed=0)(image=image)["image"]
    assert warped.shape == image.shape and warped.dtype == np.uint8
    assert not np.array_equal(warped, image)
    assert abs(int(warped.astype(int).sum()) - int(image.astype(int).sum())) < 0.5 * image.sum()


def test_epochs_are_reproducible_and_differ_from_each_other():
    images = digit_images()
    first = augment_epoch(images, seed=5, epoch=0)
    assert first.shape == images.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, augment_epoch(images, seed=5, epoch=0))
    assert not np.array_equal(first, augment_epoch(images, seed=5, epoch=1))
    assert not np.array_equal(first, augment_epoch(images, seed=6, epoch=0))


@pytest.mark.parametrize("where", ["worker", "in process", "worker killed"])
def test_every_way_of_warping_gives_the_same_epochs(where):
    """``in process``: this few images are warped in the training process, without a worker;
    ``worker killed``: a worker the kernel's OOM killer took is started again."""
    import os
    import signal

    images = digit_images()
    augmenter = EpochAugmenter(images, seed=3, epochs=3,
                               in_process=None if where == "in process" else False)
    assert (augmenter._pool is None) == (where == "in process")
    try:
        np.testing.assert_array_equal(augmenter.images_for(0), augment_epoch(images, 3, 0))
        if where == "worker killed":
            [worker] = augmenter._pool._processes
            os.kill(worker, signal.SIGKILL)
        np.testing.assert_array_equal(augmenter.images_for(1), augment_epoch(images, 3, 1))
        np.testing.assert_array_equal(augmenter.images_for(2), augment_epoch(images, 3, 2))
    finally:
        augmenter.close()


def test_warp_ranges_reach_the_augmenter():
    images = digit_images()
    still = {"rotate_deg": 0.0, "shift_fraction": 0.0, "zoom_fraction": 0.0, "shear_deg": 0.0}
    np.testing.assert_array_equal(augment_epoch(images, 5, 0, ranges=still), images)
    default = augment_epoch(images, 5, 0)
    assert np.array_equal(augment_epoch(images, 5, 0, ranges={
        "rotate_deg": 10.0, "shift_fraction": 0.1, "zoom_fraction": 0.1, "shear_deg": 5.0}),
        default)  # The defaults are the warps every earlier run used.
    stronger = augment_epoch(images, 5, 0, ranges={**still, "rotate_deg": 15.0,
                                                   "zoom_fraction": 0.15, "shift_fraction": 0.1})
    assert not np.array_equal(stronger, default)
    augmenter = EpochAugmenter(images, seed=5, epochs=1, ranges=still, in_process=False)
    try:  # The worker process warps within the ranges it was given.
        np.testing.assert_array_equal(augmenter.images_for(0), images)
    finally:
        augmenter.close()


@pytest.mark.slow  # A trainer process killed outright.
def test_the_worker_leaves_when_its_trainer_is_killed_outright():
    """SIGTERM or kill -9 give a trainer no chance to shut its pool down."""
    import subprocess
    import sys

    from helpers import ROOT, wait_until_gone

    code = ("import time, numpy as np\n"
            "from kaggle_digits.data.augment import EpochAugmenter\n"
            "augmenter = EpochAugmenter(np.zeros((8, 28, 28, 1), np.uint8), seed=0, epochs=3,\n"
            "                           in_process=False)\n"
            "augmenter.images_for(0)\n"
            "print(*augmenter._pool._processes, flush=True)\n"
            "time.sleep(600)\n")
    trainer = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)
    worker = int(trainer.stdout.readline())
    trainer.kill()
    trainer.wait()
    assert wait_until_gone([worker], timeout=15) == []


def test_a_worker_that_cannot_start_is_an_error_not_a_hang():
    """A spawned worker imports the trainer's main module: from stdin (or a script without a
    main guard) it dies starting. It hung forever while the images, its start-up arguments,
    were written to it; now the images follow as a task and training fails in seconds."""
    import subprocess
    import sys

    from helpers import ROOT

    script = ("import numpy as np\n"
              "from kaggle_digits.data.augment import EpochAugmenter\n"
              "EpochAugmenter(np.zeros((200, 28, 28, 1), np.uint8), seed=1, epochs=2,\n"
              "               in_process=False).images_for(0)\n")  # 157 KB: over a pipe's 64.
    result = subprocess.run([sys.executable, "-"], input=script, cwd=ROOT, text=True,
                            capture_output=True, timeout=90)
    assert result.returncode != 0
    assert "the augmentation worker process died twice" in result.stderr
    assert '`if __name__ == "__main__":`' in result.stderr


@pytest.mark.parametrize("distortion", [{"crop_size": 25}, {"grid_distort": 0.3},
                                        {"grid_distort": 0.3, "grid_steps": 2},
                                        {"elastic_alpha": 34.0},
                                        {"elastic_alpha": 34.0, "elastic_sigma": 6.0}])
def test_distortions_bend_digits_reproducibly_and_keep_their_ink(distortion):
    images = digit_images()
    still = {"rotate_deg": 0.0, "shift_fraction": 0.0, "zoom_fraction": 0.0, "shear_deg": 0.0}
    bent = augment_epoch(images, 5, 0, ranges={**still, **distortion})
    assert bent.shape == images.shape and bent.dtype == images.dtype
    assert not np.array_equal(bent, images)
    np.testing.assert_array_equal(bent, augment_epoch(images, 5, 0, ranges={**still,
                                                                            **distortion}))
    assert not np.array_equal(bent, augment_epoch(images, 5, 1, ranges={**still, **distortion}))
    # A bend moves strokes, it does not wipe or flood the digit.
    ink = images.reshape(len(images), -1).sum(axis=1)
    kept = bent.reshape(len(bent), -1).sum(axis=1) / ink
    assert 0.6 < np.median(kept) < 1.6, kept


def test_a_config_with_no_distortion_warps_as_before_the_options_existed():
    from kaggle_digits.training.config import TrainConfig

    images = digit_images()
    ranges = TrainConfig().augment_ranges
    assert ranges["crop_size"] == 0 and ranges["grid_distort"] == 0 and \
        ranges["elastic_alpha"] == 0
    np.testing.assert_array_equal(augment_epoch(images, 5, 0, ranges=ranges),
                                  augment_epoch(images, 5, 0, ranges={
                                      "rotate_deg": 10.0, "shift_fraction": 0.1,
                                      "zoom_fraction": 0.1, "shear_deg": 5.0}))
