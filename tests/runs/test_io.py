import os
import stat

import numpy as np
import pytest

from kaggle_digits.runs.io import atomic_path, load_npy, save_npy_atomic, write_text_atomic


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk went away")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_files_with_normal_permissions(tmp_path):
    target = write_text_atomic(tmp_path / "sub.csv", "ImageId,Label\n")
    write_text_atomic(target, "ImageId,Label\n1,7\n")
    assert target.read_text() == "ImageId,Label\n1,7\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["sub.csv"]


def test_temporary_name_keeps_the_extension_writers_need(tmp_path):
    with atomic_path(tmp_path / "model.keras") as tmp:
        assert tmp.name.endswith(".keras") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")


def test_arrays_round_trip_without_pickle(tmp_path):
    save_npy_atomic(tmp_path / "p.npy", np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(load_npy(tmp_path / "p.npy"), np.eye(3))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        load_npy(tmp_path / "obj.npy")


def test_disk_full_midway_leaves_neither_a_partial_file_nor_a_temporary(tmp_path):
    import errno

    from kaggle_digits.runs.io import atomic_path

    (tmp_path / "probs.npy").write_bytes(b"previous complete file")
    with pytest.raises(OSError, match="No space left"):
        with atomic_path(tmp_path / "probs.npy") as tmp:
            tmp.write_bytes(b"half of it")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert [p.name for p in tmp_path.iterdir()] == ["probs.npy"]
    assert (tmp_path / "probs.npy").read_bytes() == b"previous complete file"


def test_a_failed_write_names_the_file_it_was_writing(tmp_path, monkeypatch):
    """A full disk printed "error: : No space left on device": the write names no file."""
    import errno
    from pathlib import Path

    from kaggle_digits.cli.common import os_error_text

    def full_disk(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError) as caught:
        write_text_atomic(tmp_path / "metrics.json", "{}")
    assert os_error_text(caught.value) == f"{tmp_path / 'metrics.json'}: No space left on device"
    assert os_error_text(OSError(errno.ENOSPC, "No space left on device")) == \
        "No space left on device"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, problem", [
    ('{"epochs_done": 99999999999999999999999}', "too large"),
    ('{"val_accuracy": NaN}', "NaN is not a number"),
    ('{"val_accuracy": Infinity}', "Infinity is not a number"),
    ('{"val_rows": 1e999}', "too large"),
])
def test_records_refuse_numbers_no_record_holds(text, problem):
    from kaggle_digits.runs.io import parse_json

    with pytest.raises(ValueError, match=problem):
        parse_json(text)
    assert parse_json('{"a": 3, "b": 0.5}') == {"a": 3, "b": 0.5}
