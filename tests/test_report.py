"""`bloodbench report`: README, plots and model cards from records; determinism; compare mode."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from records_factory import (
    CLASS_NAMES,
    GPU,
    benchmark_entry,
    profile_record,
    train_record,
    write_benchmark_json,
    write_store,
)

from bloodbench.cli import main
from bloodbench.formatting import md_table
from bloodbench.report import compare, plots, write_report
from bloodbench.store.results import ResultsStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def records() -> list[dict]:
    recs = []
    for model, family, accs, macs, p50 in [("alpha", "resnet", [0.95, 0.96], 50_000_000, 1.0),
                                           ("beta", "mobile", [0.93, 0.925], 8_000_000, 0.4),
                                           ("gamma", "mobile", [0.91, 0.90], 20_000_000, 0.7)]:
        for seed, acc in enumerate(accs):
            recs.append(train_record(model, seed, acc, family=family, epochs=8 + seed,
                                     created_at=f"2025-01-1{seed}T10:00:00+00:00"))
        recs.append(profile_record(model, macs=macs, p50=p50, throughput=1e11 / macs))
        recs.append(profile_record(model, device="cpu", macs=macs, p50=p50 * 20, throughput=1e9 / macs))
    recs.append(train_record("delta", 0, 0.88, family="baseline"))  # trained, never profiled
    return recs


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The same records reported twice into two folders (plus Grad-CAM files for alpha)."""
    root = tmp_path_factory.mktemp("report")
    write_store(root / "results", records())
    outs = []
    for name in ("a", "b"):
        out = root / name
        (out / "explain" / "alpha").mkdir(parents=True)
        (out / "explain" / "alpha" / "gradcam_correct.png").write_bytes(PNG_MAGIC)
        (out / "explain" / "alpha" / "errors.md").write_text("# errors\n")
        paths = write_report(root / "results", out)
        outs.append((out, paths))
    return root, outs


def test_report_files(reports):
    root, [(out, paths), _] = reports
    rel = sorted(str(p.relative_to(out)) for p in paths)
    assert "README.md" in rel
    for model in ("alpha", "beta", "gamma", "delta"):
        assert f"models/{model}.md" in rel
    for plot in ("acc_vs_macs_bloodmnist_28", "acc_vs_latency_bloodmnist_28_cuda_nvidia-h100-80gb-hbm3",
                 "acc_vs_latency_bloodmnist_28_cpu_intel-r-xeon-r-platinum-8480-2-threads",
                 "acc_vs_params_bloodmnist_28"):
        assert f"plots/{plot}.png" in rel
    assert "models/alpha_bloodmnist_28_curves.png" in rel and "models/alpha_bloodmnist_28_confusion.png" in rel
    for p in paths:
        if p.suffix == ".png":
            data = p.read_bytes()
            assert data.startswith(PNG_MAGIC) and len(data) > 10_000
            assert b"Software" not in data and b"matplotlib version" not in data


def test_readme_content(reports):
    _, [(out, _), _] = reports
    readme = (out / "README.md").read_text()
    assert "| model" in readme and "test acc (%)" in readme and "MACs (M)" in readme
    assert f"cost on cuda: {GPU}" in readme
    assert f"no profile on {GPU} fp32 (this table's machine) for: delta" in readme
    # environment from the records' env block
    for fact in (GPU, "Intel(R) Xeon(R) Platinum 8480+", "2.5.1", "12.4", "abc1234def", "2025-01-10 … 2025-01-11"):
        assert fact in readme


def test_readme_says_where_the_compute_went(reports):
    root, [(out, _), _] = reports
    readme = (out / "README.md").read_text()
    section = readme.split("## Where the compute went", 1)[1].split("\n## ", 1)[0]
    done = [r for r in ResultsStore(root / "results").records("train") if r["status"] in ("finished", "diverged")]
    hours = sum(r["train_seconds"] for r in done) / 3600
    assert f"Training {hours:.2f} h" in section
    alpha = [line for line in section.splitlines() if line.startswith("| alpha ")]
    assert len(alpha) == 1 and f"| {sum(r['model'] == 'alpha' for r in done)} " in alpha[0]
    for cmd in ("bloodbench run", "bloodbench train $m --seed $s", "bloodbench profile --all", "bloodbench report"):
        assert cmd in readme
    assert "for m in alpha beta delta gamma; do for s in 0 1; do" in readme
    assert "![accuracy vs MACs](plots/acc_vs_macs_bloodmnist_28.png)" in readme
    assert "[alpha](models/alpha.md)" in readme
    assert "`../results`" in readme  # relative, so the text does not depend on where it was built
    for link in readme.split("](")[1:]:
        target = link.split(")")[0]
        if not target.startswith("http"):
            assert (out / target).exists(), target


def test_model_card(reports):
    _, [(out, _), _] = reports
    card = (out / "models" / "alpha.md").read_text()
    assert "alpha: a made-up test model" in card and "tests/records_factory.py" in card
    assert "![training curves of alpha](alpha_bloodmnist_28_curves.png)" in card
    assert "![confusion matrix of alpha](alpha_bloodmnist_28_confusion.png)" in card
    assert "Per-class metrics (test, mean over 2 seeds)" in card and "| immature granulocytes" in card
    assert "converged" in card and "| `features.0`" in card
    assert "NVIDIA H100 80GB HBM3" in card and "Intel(R) Xeon(R)" in card  # every device profiled
    assert "(../explain/alpha/gradcam_correct.png)" in card and "(../explain/alpha/errors.md)" in card
    assert "gradcam_wrong.png" not in card and "reliability.png" not in card  # only files that exist
    assert "Explanations" not in (out / "models" / "beta.md").read_text()
    delta = (out / "models" / "delta.md").read_text()
    assert "Not profiled yet" in delta


def test_report_is_deterministic(reports):
    _, [(a, pa), (b, pb)] = reports
    rel_a = sorted(p.relative_to(a) for p in pa)
    assert rel_a == sorted(p.relative_to(b) for p in pb)
    for rel in rel_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_stale_cards_and_plots_are_removed(tmp_path):
    write_store(tmp_path / "r", records())
    write_report(tmp_path / "r", tmp_path / "out")
    assert (tmp_path / "out" / "models" / "gamma.md").is_file()
    (tmp_path / "out" / "models" / "notes.txt").write_text("mine")  # not ours: kept
    for path in sorted((tmp_path / "r" / "train").glob("gamma-*")):
        for f in path.iterdir():
            f.unlink()
        path.rmdir()
    for path in (tmp_path / "r" / "profile").glob("gamma-*"):
        path.unlink()
    write_report(tmp_path / "r", tmp_path / "out")
    assert not (tmp_path / "out" / "models" / "gamma.md").exists()
    assert not list((tmp_path / "out" / "models").glob("gamma_*.png"))
    assert (tmp_path / "out" / "models" / "notes.txt").is_file()


def test_report_cli_empty_results(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["report", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["missing results", "bad out", "results is a file"])
def test_report_bad_input_is_one_line_error(tmp_path, capsys, case):
    write_store(tmp_path / "r", records())
    results, out = tmp_path / "r", tmp_path / "out"
    if case == "missing results":
        results = tmp_path / "nonexistent"
        expected = f"results directory {results} does not exist"
    elif case == "bad out":
        out = tmp_path / "file" / "x"
        (tmp_path / "file").write_text("a file, not a folder")
        expected = f"cannot write to output folder {out}: Not a directory; choose another --out"
    else:
        results = tmp_path / "file"
        results.write_text("a file, not a results folder")
        expected = f"results directory {results} does not exist"
    rc = main(["report", "--results", str(results), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and expected in err
    assert not out.exists()


def test_compare_to_an_unusable_out_is_one_line_error(tmp_path, capsys):
    write_store(tmp_path / "r", records())
    rc = main(["report", "--results", str(tmp_path / "r"), "--compare", str(tmp_path / "r"),
               "--out", "/dev/null/x"])
    err = capsys.readouterr().err
    assert rc == 2 and err == "error: cannot write to output folder /dev/null/x: Not a directory; choose another --out\n"


def test_readme_names_the_cost_source(tmp_path):
    write_store(tmp_path / "r", records())
    bench = write_benchmark_json(tmp_path / "bench.json", [
        benchmark_entry("delta", batch_size=1, p50=0.9, images_per_s=1100, macs=50_000_000),
        # alpha was profiled: the benchmark's 5 ms must not replace the measured 1 ms, and is footnoted
        benchmark_entry("alpha", batch_size=1, p50=5.0, images_per_s=200, macs=50_000_000)])
    write_report(tmp_path / "r", tmp_path / "out", benchmark_json=[bench])
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "; source: pytest-benchmark bench.json for delta; profile records for the other rows_" in readme
    assert "| alpha¹ " in readme and "| 1.000 " in readme
    assert ("¹ cost measured on this machine by two sources that disagree: alpha (bench.json says p50 5.000 ms vs 1.000 ms; "
            "throughput 200 img/s vs 2,000 img/s in the profile record shown)") in readme


def test_md_table_escapes_pipes_so_rows_keep_their_cells():
    table = md_table([["a|b", "1"]], ["name", "|gap|"], numeric_from=1)
    assert [len(re.split(r"(?<!\\)\|", line)) for line in table.splitlines()] == [4, 4, 4]


def test_confusion_matrix_is_readable_with_real_class_names():
    cm = np.array(train_record("alpha", 0, 0.9)["test"]["confusion_matrix"]) * 6  # four-digit counts
    fig = plots.confusion_matrix(cm, CLASS_NAMES, "alpha: test confusion matrix (summed over 3 seeds)")
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    ax, cbar = fig.axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [t.get_text() for t in ax.get_yticklabels()] and "immature granulocytes" in labels
    assert max(map(len, labels)) <= 22  # not the 70-character name
    assert ax.get_window_extent(renderer).width / fig.dpi >= 0.6 * len(cm)  # cells wide enough for "1,234"
    assert not fig._suptitle.get_window_extent(renderer).overlaps(cbar.get_window_extent(renderer))


def test_params_axis_under_a_decade_labels_values_above_one_million():
    rows = pd.DataFrame({"model": ["a", "b", "c"], "family": ["x", "y", "y"], "acc_mean": [0.967, 0.972, 0.958],
                         "acc_std": [0.001, 0.004, None], "params": [662_000, 1_188_000, 1_526_000]})
    fig = plots.scatter_tradeoff(rows, "params", xscale=1e-6, xlabel="parameters (M)", title="t")
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    shown = [float(t.get_text()) for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    assert len(shown) >= 4 and any(v > 1 for v in shown)  # was 0.6 ... 1 and nothing above


def test_training_curves_have_whole_epoch_ticks():
    fig = plots.training_curves([(0, train_record("alpha", 0, 0.9, epochs=5)["history"])], "t")
    fig.draw_without_rendering()
    for ax in fig.axes:
        ticks = ax.get_xticks()
        assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks)


def test_compare_results_dirs_flags_regressions(tmp_path, capsys):
    old = [train_record("alpha", 0, 0.95), train_record("beta", 0, 0.93),
           profile_record("alpha", macs=50_000_000, p50=1.0, throughput=10_000),
           profile_record("beta", macs=8_000_000, p50=0.4, throughput=30_000)]
    new = [train_record("alpha", 0, 0.94), train_record("beta", 0, 0.928), train_record("gamma", 0, 0.9),
           profile_record("alpha", macs=50_000_000, p50=1.2, throughput=10_100),
           profile_record("beta", macs=8_000_000, p50=0.41, throughput=25_000)]
    write_store(tmp_path / "old", old)
    write_store(tmp_path / "new", new)
    result = compare(tmp_path / "old", tmp_path / "new")
    assert result.regressions == [
        "alpha (bloodmnist 28px): test accuracy -1.00 pt",
        f"alpha (bloodmnist 28px, cuda fp32 on {GPU}): p50 latency +20.0%",
        f"beta (bloodmnist 28px, cuda fp32 on {GPU}): throughput -16.7%",
    ]
    acc = {r.model: r for r in result.accuracy.itertuples()}
    assert acc["beta"].flag == "" and acc["beta"].acc_delta_pt == pytest.approx(-0.2)  # within 0.5 pt
    assert acc["gamma"].flag == "new"
    assert len(compare(tmp_path / "old", tmp_path / "new", threshold=0.25, acc_threshold_pt=2).regressions) == 0

    out = tmp_path / "rep"
    rc = main(["report", "--results", str(tmp_path / "new"), "--compare", str(tmp_path / "old"), "--out", str(out),
               "--fail-on-regression"])
    stdout = capsys.readouterr().out
    assert rc == 1
    assert "**3 regression(s):**" in stdout and "⚠ regression" in stdout
    assert (out / "compare.md").read_text() == stdout
    rc = main(["report", "--results", str(tmp_path / "new"), "--compare", str(tmp_path / "old"), "--out", str(out)])
    assert rc == 0  # flags, but only fails when asked to


def test_compare_across_machines_is_no_regression(tmp_path, capsys):
    """Xeon results against EPYC results: "p50 latency +698.5 %" and exit 1 was a hardware change, not a regression."""
    old = [train_record("alpha", 0, 0.95), profile_record("alpha", device="cpu", macs=5_000_000, p50=1.0,
                                                          throughput=1000, device_name="Intel Xeon (2 threads)")]
    new = [train_record("alpha", 0, 0.95), profile_record("alpha", device="cpu", macs=5_000_000, p50=8.0,
                                                          throughput=120, device_name="AMD EPYC (1 thread)"),
           profile_record("beta", device="cpu", macs=5_000_000, p50=9.0, throughput=100,
                          device_name="Intel Xeon (2 threads)")]
    write_store(tmp_path / "old", old)
    write_store(tmp_path / "new", new)
    result = compare(tmp_path / "old", tmp_path / "new")
    assert result.regressions == [] and result.machines_differ()
    flags = {(r.model, r.device_name): r.flag for r in result.cost.itertuples()}
    assert flags == {("alpha", "AMD EPYC (1 thread)"): "other machine", ("alpha", "Intel Xeon (2 threads)"): "other machine",
                     ("beta", "Intel Xeon (2 threads)"): "new"}
    rc = main(["report", "--results", str(tmp_path / "new"), "--compare", str(tmp_path / "old"), "--fail-on-regression"])
    out = capsys.readouterr().out
    assert rc == 0 and "**The machines differ**: old measured on Intel Xeon (2 threads), new on AMD EPYC (1 thread); " \
        "Intel Xeon (2 threads)" in out and "+700" not in out and "No regressions" in out


def test_compare_prints_and_writes_no_file_without_out(tmp_path, capsys, monkeypatch):
    """`report --compare OLD` must not drop reports/compare.md into the checkout it runs in."""
    write_store(tmp_path / "old", [train_record("alpha", 0, 0.95), profile_record("alpha", macs=5_000_000, p50=1.0, throughput=1000)])
    write_store(tmp_path / "new", [train_record("alpha", 0, 0.94), profile_record("alpha", macs=5_000_000, p50=1.2, throughput=900)])
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    rc = main(["report", "--results", str(tmp_path / "new"), "--compare", str(tmp_path / "old")])
    out, err = capsys.readouterr()
    assert rc == 0 and list(work.iterdir()) == [] and "wrote" not in err
    assert out.startswith("# Comparison:") and "## Accuracy" in out and "## Cost" in out
    headers = [line for line in out.splitlines() if line.startswith("| model")]
    assert len(headers) == 2
    for line in headers:  # every column is named: the regression flags sit under "flag"
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert all(cells) and cells[-1] == "flag"


def test_compare_benchmark_jsons(tmp_path, capsys):
    def entries(p50, ips):
        return [benchmark_entry("alpha", batch_size=1, p50=p50, images_per_s=1000 / p50, macs=5_000_000),
                benchmark_entry("alpha", batch_size=256, p50=10, images_per_s=ips, macs=5_000_000)]

    old = write_benchmark_json(tmp_path / "old.json", entries(0.50, 20_000))
    new = write_benchmark_json(tmp_path / "new.json", entries(0.51, 17_000))
    rc = main(["report", "--compare", str(old), str(new), "--out", str(tmp_path / "out")])
    text = capsys.readouterr().out
    assert rc == 0
    assert f"alpha (bloodmnist 28px, cuda fp32 on {GPU}): throughput -15.0%" in text
    assert "p50 latency +" not in text  # +2% latency is within the 5% threshold
    assert "## Accuracy" not in text  # benchmark files carry no accuracy
    rc = main(["report", "--compare", str(old), str(new), "--threshold", "0.2", "--out", str(tmp_path / "out")])
    assert rc == 0 and "No regressions" in capsys.readouterr().out
    rc = main(["report", "--compare", str(tmp_path / "nope.json"), str(new), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: cannot compare")
    json.loads(old.read_text())  # the inputs are left alone
