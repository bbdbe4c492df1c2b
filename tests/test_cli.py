"""The command line: output files, and one clear line with exit status 2 for bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from tess_backml import __version__
from tess_backml.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_vectors_writes_the_table_and_plot(tmp_path, capsys):
    out, plot = tmp_path / "v.csv", tmp_path / "v.png"
    status, stdout, err = run(capsys, "vectors", "--sector", "4", "--camera", "1", "--out", str(out), "--plot", str(plot))
    assert status == 0, err
    table = Table.read(out, format="ascii.csv")
    assert len(table) > 1300  # 28 days at 30-minute cadence
    assert "Moon_Camera_Azimuth" in table.colnames and "Earth_Angular_Size" in table.colnames
    assert plot.stat().st_size > 10_000
    assert str(out) in stdout
    assert not list(tmp_path.glob(".*part"))


def test_vectors_at_times_from_a_file(tmp_path, capsys):
    times = tmp_path / "times.txt"
    times.write_text("# BTJD\n1415.25\n\n2458425.75  # a JD\n")
    out = tmp_path / "v.csv"
    status, _, err = run(capsys, "vectors", "--sector", "4", "--camera", "2", "--times", str(times), "--out", str(out))
    # JD and BTJD mixed in one file are refused; BTJD alone works.
    assert status == 2 and "mix" in err
    times.write_text("1415.25\n1425.75\n")
    status, _, err = run(capsys, "vectors", "--sector", "4", "--camera", "2", "--times", str(times), "--out", str(out))
    assert status == 0, err
    assert np.allclose(Table.read(out, format="ascii.csv")["BTJD"], [1415.25, 1425.75])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["vectors", "--sector", "0", "--camera", "1"], "sector 0"),
        (["vectors", "--sector", "4", "--camera", "1", "--times", "TIMES_OUTSIDE"], "outside the span"),
        (["vectors", "--sector", "4", "--camera", "1", "--ephemeris", "BAD_HORIZONS"], "Horizons"),
        (["vectors", "--sector", "4", "--camera", "1", "--times", "NOT_TIMES"], "is not a time"),
        (["vectors", "--sector", "4", "--camera", "1", "--times", "MISSING"], "cannot read times"),
    ],
)
def test_bad_input_gives_one_line_and_status_2(tmp_path, capsys, argv, message):
    files = {
        "TIMES_OUTSIDE": "1330.5\n",  # Sector 1: not in the offline SPICE kernels
        "BAD_HORIZONS": "this is not a Horizons table\n",
        "NOT_TIMES": "1415.0\nyesterday\n",
    }
    argv = list(argv)
    for i, word in enumerate(argv):
        if word in files or word == "MISSING":
            path = tmp_path / word.lower()
            if word in files:
                path.write_text(files[word])
            argv[i] = str(path)
    if "--ephemeris" not in argv and "TIMES_OUTSIDE" in " ".join(argv).upper():
        argv += ["--ephemeris", "test"]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "v.csv"))
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "v.csv").exists()


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["vectors", "--sector", "4", "--camera", "5", "--out", "x.csv"])
    assert exc.value.code == 2


def test_installed_console_script_reports_version():
    script = Path(sys.executable).parent / "tess-backml"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tess_backml.cli"]
    result = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize(
    "frames, message",
    [("10:5", "select no frame: the start must be below the stop"), ("7:7", "select no frame"), ("5000:", "out of range")],
)
def test_empty_reversed_and_out_of_range_frames_say_which(tmp_path, capsys, frames, message):
    try:
        status, _, err = run(capsys, "-q", "simulate", "--out-dir", str(tmp_path / "ffis"), "--frames", frames)
    except SystemExit as exc:  # refused by argparse while parsing: usage, then the error line
        status, err = exc.code, capsys.readouterr().err
    assert status == 2
    assert message in err.strip().splitlines()[-1]
    assert not (tmp_path / "ffis").exists() or not any((tmp_path / "ffis").iterdir())


def test_a_sector_error_lists_the_real_sectors(capsys):
    status, _, err = run(capsys, "vectors", "--sector", "1751", "--camera", "1", "--out", "unused.csv")
    assert status == 2
    assert "sector 1751" in err and "valid: 1-" in err
    assert "1751)" not in err  # a special pointing in tesswcs's table, not a sector


def test_an_error_after_a_progress_bar_starts_on_its_own_line(capsys, monkeypatch):
    from tqdm import tqdm

    from tess_backml import cli
    from tess_backml.errors import TessBackmlError

    def failing_after_progress(args):
        bar = tqdm(total=10, desc="working", disable=False, file=sys.stderr)
        bar.update(3)
        raise TessBackmlError("the light went out")

    monkeypatch.setattr(cli, "run_info", failing_after_progress)
    status, _, err = run(capsys, "info", "sim")
    assert status == 2
    assert "\ntess-backml info: error: the light went out" in err
    assert "working" in err.split("tess-backml info: error")[0]


def test_quiet_runs_leave_the_progress_bar_setting_as_they_found_it(capsys, monkeypatch):
    import os

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    run(capsys, "-q", "vectors", "--sector", "0", "--camera", "1", "--out", "unused.csv")
    assert "TQDM_DISABLE" not in os.environ


@pytest.mark.parametrize("value", ["-2", "0", "nan", "two"])
def test_a_bad_time_bin_is_refused_before_any_work(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["cube", "--sector", "4", "--camera", "1", "--ccd", "1", "--source", "sim", "--time-bin", value])
    assert exit_info.value.code == 2
    assert "time bin" in capsys.readouterr().err.strip().splitlines()[-1]
