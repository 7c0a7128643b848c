"""Issue 24 item 6: a --slurm-config file's values are checked exactly as the flags are, and nothing
(a config value, an extra key, --sbatch) can add a line to the sbatch script."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from bloodbench.choices import slurm_value

BASE = ["run", "--models", "baseline_cnn", "--seeds", "0", "--no-profile", "--executor", "slurm", "--dry-run"]


@pytest.fixture
def no_slurm(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # --dry-run needs no sbatch




def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# (key, TOML value, flag, flag value, the reason both give)
BAD = [
    ("gpus_per_task", '"two"', "--gpus-per-task", "two", "expected an integer >= 0, got 'two'"),
    ("time", "-5", "--time", "-5", "expected an integer >= 1, got "),
    ("time", "0", "--time", "0", "expected an integer >= 1, got "),
    ("array_parallelism", "0", "--array-parallelism", "0", "expected an integer >= 1, got "),
    ("cpus_per_task", "-1", "--cpus-per-task", "-1", "expected an integer >= 1, got "),
    ("gpus_per_task", "1.5", "--gpus-per-task", "1.5", "expected an integer >= 0, got "),
    ("mem", '"32 G"', "--mem", "32 G", "expected no spaces, got '32 G'"),
    ("mem", '"lots"', "--mem", "lots", "expected a size such as 32G or 16000 (MB), got 'lots'"),
    ("partition", '"gpu\\n#SBATCH --wrap=evil"', "--partition", "gpu\n#SBATCH --wrap=evil",
     "control characters (newline, CR, NUL, ...) are not allowed"),
    ("account", '"lab\\r"', "--account", "lab\r", "control characters"),
    ("partition", '"gpu\\u0000"', "--partition", "gpu\x00", "control characters"),
]


@pytest.mark.parametrize("key, toml_value, flag, flag_value, reason", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_a_bad_value_is_refused_alike_in_the_config_file_and_as_a_flag(tmp_path, capsys, no_slurm, key,
                                                                       toml_value, flag, flag_value, reason):
    config = tmp_path / "slurm.toml"
    config.write_text(f"[slurm]\n{key} = {toml_value}\n")
    rc, out, err = run_cli(capsys, *BASE, "--results", tmp_path, "--slurm-config", config)
    line = one_line(err)
    assert rc == 2 and "#SBATCH" not in out
    assert line.startswith(f"error: --slurm-config {config}: {key}: ") and reason in line
    rc, out, err = run_cli(capsys, *BASE, "--results", tmp_path, flag, flag_value)
    line = one_line(err)
    assert rc == 2 and "#SBATCH" not in out
    assert line.startswith(f"error: argument {flag}: ") and reason in line


@pytest.mark.parametrize("extra", [
    {"qos\n#SBATCH --wrap": "x"},
    {"qos": "high\n#SBATCH --wrap=evil"},
    {"qos": "high\r\n"},
    {"qos": ["a", "b"]},
    {"q os": "high"},
])
def test_extra_sbatch_flags_in_a_config_file_cannot_inject_a_line(tmp_path, capsys, no_slurm, extra):
    config = tmp_path / "slurm.json"
    config.write_text(json.dumps({"partition": "gpu", "additional_parameters": extra}))
    rc, out, err = run_cli(capsys, *BASE, "--results", tmp_path, "--slurm-config", config)
    assert rc == 2 and "#SBATCH" not in out
    line = one_line(err)
    assert line.startswith(f"error: --slurm-config {config}: additional_parameters: ")
    assert "control characters" in line or "expected" in line


@pytest.mark.parametrize("sbatch", ["qos=high\n#SBATCH --wrap=evil", "qos\n#SBATCH --wrap=x=1", "mail_type=\x00FAIL",
                                    "q os=high"])
def test_sbatch_flag_cannot_inject_a_line(tmp_path, capsys, no_slurm, sbatch):
    rc, out, err = run_cli(capsys, *BASE, "--results", tmp_path, "--sbatch", sbatch)
    assert rc == 2 and "#SBATCH" not in out
    line = one_line(err)
    assert line.startswith("error: argument --sbatch: ") and ("control characters" in line or "expected" in line)


@pytest.mark.parametrize("name, content, why", [
    ("slurm.toml", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "is not a text file (not UTF-8)"),
    ("slurm.json", b"\xff\xfe{\x00}\x00", "is not a text file (not UTF-8)"),
    ("slurm.json", b"[1, 2]", "expected a table of Slurm options, got list"),
    ("slurm.toml", b"slurm = 5\n", "expected a table of Slurm options, got int"),
    ("slurm.json", b"{\"additional_parameters\": 5}", "additional_parameters: expected a table of sbatch flags"),
    ("slurm.json", b"[" * 100_000, "is not valid json"),
    ("slurm.toml", b"partition = \n", "is not valid toml"),
])
def test_an_unusable_config_file_is_one_error_line(tmp_path, capsys, no_slurm, name, content, why):
    config = tmp_path / name
    config.write_bytes(content)
    rc, out, err = run_cli(capsys, *BASE, "--results", tmp_path, "--slurm-config", config)
    assert rc == 2 and "#SBATCH" not in out
    line = one_line(err)
    assert line.startswith(f"error: --slurm-config {config}") and why in line


def test_good_values_pass_both_ways_and_reach_the_script(tmp_path, capsys, no_slurm):
    config = tmp_path / "slurm.toml"
    config.write_text('[slurm]\npartition = "gpu,debug"\ngpus_per_task = 0\ncpus_per_task = 2\nmem = 16000\n'
                      'time = "30"\narray_parallelism = 2\n'
                      'additional_parameters = { constraint = "a100|h100", nodes = 1 }\n')
    rc, out, err = run_cli(capsys, *BASE, "--results", tmp_path, "--slurm-config", config,
                           "--sbatch", "mail-type=FAIL")
    assert rc == 0, err
    for line in ("--partition=gpu,debug", "--cpus-per-task=2", "--mem=16000", "--time=30", "--constraint='a100|h100'",
                 "--nodes=1", "--mail-type=FAIL"):
        assert f"#SBATCH {line}\n" in out
    assert slurm_value("gpus_per_task", " 2 ") == 2 and slurm_value("mem", "32g") == "32g"


def test_an_unknown_key_with_a_newline_is_named_on_one_line(tmp_path, capsys, no_slurm):
    config = tmp_path / "slurm.json"
    config.write_text(json.dumps({"partition\n#SBATCH --wrap=x": "gpu"}))
    rc, out, err = run_cli(capsys, *BASE, "--results", tmp_path, "--slurm-config", config)
    assert rc == 2 and "#SBATCH" not in out
    assert "unknown key(s) 'partition\\n#SBATCH --wrap=x'; known: partition" in one_line(err)
