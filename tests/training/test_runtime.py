"""TensorFlow's start-up lines stay off a CPU user's terminal unless asked for."""

from pathlib import Path

import pytest
from helpers import run_script


@pytest.mark.slow  # A command started as a process.
def test_tensorflows_start_up_lines_are_shown_when_asked_for(tiny_data_dir):
    """Their absence by default is checked on an interrupted train.py in test_training_modes.
    (``--check`` builds a model, so TensorFlow starts; ``--list-archs`` no longer loads it.)"""
    shown = run_script("train.py", "--arch", "mlp", "--check", "--data", str(tiny_data_dir),
                       env={"KAGGLE_DIGITS_VERBOSE": "1"})
    assert shown.returncode == 0 and "oneDNN custom operations" in shown.stderr


def test_bfloat16_instructions_are_read_from_the_cpu_flags():
    from kaggle_digits.training.runtime import cpu_has_native_bfloat16

    zen3 = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2\n"
    sapphire_rapids = "flags\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert cpu_has_native_bfloat16(zen3) is False
    assert cpu_has_native_bfloat16(sapphire_rapids) is True
    assert cpu_has_native_bfloat16("processor\t: 0\n") is None  # No flags line: unknown.
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), None) if Path("/proc/cpuinfo").exists() else None
    expected = None if flags is None else any(flag in flags.split()
                                              for flag in ("avx512_bf16", "amx_bf16"))
    assert cpu_has_native_bfloat16() is expected  # This machine, read the same way.
