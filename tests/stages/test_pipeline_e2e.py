"""End to end: `dvc repro` of a tiny grid in a temporary copy of the repository (``reproduced``, shared with the launch
tests), then its outputs and MLflow runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.reporting.browser import check_report_in_browser
from tests.stages.conftest import dvc

pytestmark = pytest.mark.slow


def test_metrics_files_of_every_cell(reproduced: Path) -> None:
    for variant in ("gan", "vae"):  # boom diverges: see test_diverging_variant_is_isolated
        metrics = json.loads((reproduced / "metrics" / f"{variant}-0.json").read_text())
        assert metrics["variant"] == variant and metrics["seed"] == 0 and metrics["status"] == "ok"
        assert metrics["num_samples"] == 200 and metrics["feature_extractor"] == "domain-classifier"
        for key in ("fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "train_seconds", "images_per_second"):
            assert isinstance(metrics[key], float), key
        assert metrics["fid"] >= 0 and metrics["isc_mean"] >= 1 - 1e-9  # exp(mean KL) ≥ 1 up to rounding
        assert metrics["fid_ci_low"] <= metrics["fid_ci_high"] and 0 <= metrics["precision"] <= 1
        assert 1 <= metrics["classes_covered"] <= metrics["num_classes"] == 10
        assert [point["step"] for point in metrics["fid_curve"]] == [0, 3, 6]
        assert 0 <= metrics["ndb"] <= metrics["ndb_bins"] and metrics["ndb_js"] >= 0
    floor = json.loads((reproduced / "metrics" / "noise-floor.json").read_text())
    assert floor["feature_spaces"]["domain-classifier"]["fid_mean"] >= 0


def test_diverging_variant_is_isolated(reproduced: Path) -> None:
    metrics = json.loads((reproduced / "metrics" / "boom-0.json").read_text())
    assert metrics["status"] == "diverged" and "non-finite" in metrics["reason"] and metrics["fid"] is None
    summary = json.loads((reproduced / "reports" / "metrics.json").read_text())
    assert summary["variants"]["boom"]["cells"] == {"ok": 0, "diverged": 1, "failed": 0}
    assert "boom" not in summary["ranking"] and summary["variants"]["boom"]["fid"]["n"] == 0
    report = (reproduced / "reports" / "report.md").read_text()
    assert "boom-0" in report and "diverged" in report
    client = MlflowClient(f"sqlite:///{reproduced / 'mlflow.db'}")
    run = client.get_run(metrics["mlflow_run_id"])
    assert run.info.status == "FAILED" and "non-finite" in run.data.tags["failure_reason"]


def test_report_and_dvc_metrics(reproduced: Path) -> None:
    summary = json.loads((reproduced / "reports" / "metrics.json").read_text())
    assert set(summary["variants"]) == {"gan", "vae", "boom"} and summary["ranking"] in (["gan", "vae"], ["vae", "gan"])
    cells = {v: json.loads((reproduced / "metrics" / f"{v}-0.json").read_text()) for v in ("gan", "vae")}
    best = summary["best_variant"]
    assert best == min(cells, key=lambda v: cells[v]["fid"])  # one seed each: the lower FID ranks first
    fid = summary["variants"]["gan"]["fid"]
    assert fid["n"] == 1 and fid["mean"] == pytest.approx(cells["gan"]["fid"]) and fid["values"] == [fid["mean"]]
    assert summary["variants"]["boom"]["fid"]["n"] == 0 and summary["variants"]["boom"]["excluded"]
    report = (reproduced / "reports" / "report.md").read_text()
    assert f"**{best}** has the lowest FID (domain classifier): {cells[best]['fid']:.2f}" in report
    headline = json.loads((reproduced / "reports" / "headline.json").read_text())
    assert headline["best"] == best and headline["fid"]["gan"]["mean"] == pytest.approx(fid["mean"])
    assert headline["fid"]["boom"] == {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    # the one DVC metric is the headline: `dvc metrics show` is a few lines, not a wall of per-cell keys
    shown = json.loads(dvc(reproduced, "metrics", "show", "--json").stdout)
    assert list(shown[""]["data"]) == ["reports/headline.json"]
    table = dvc(reproduced, "metrics", "show").stdout.splitlines()
    assert len(table) <= 40 and "fid.gan.mean" in table[0]


def test_the_report_reads_well_in_a_browser(reproduced: Path) -> None:
    check_report_in_browser(reproduced / "reports" / "report.html")


def test_delivering_mlflow_logging_later_leaves_the_pipeline_up_to_date(reproduced: Path) -> None:
    outbox = reproduced / "runs" / "gan-0" / "mlflow"
    assert outbox.is_dir()
    (outbox / "delivered-later.json").write_text("{}")  # what `stages sync` changes: the outbox's state
    try:
        status = json.loads(dvc(reproduced, "status", "--json").stdout)
    finally:
        (outbox / "delivered-later.json").unlink()
    assert status == {}
    losses = reproduced / "runs" / "gan-0" / "losses.csv"
    original = losses.read_bytes()
    losses.write_bytes(original + b"99,0,0\n")  # the report reads it, so the report is stale
    try:
        status = json.loads(dvc(reproduced, "status", "--json").stdout)
    finally:
        losses.write_bytes(original)
    assert "report" in status and "train@gan-0" in status


def test_labelled_digits_get_the_classifier_and_a_feature_check(reproduced: Path) -> None:
    evaluator = json.loads((reproduced / "models" / "evaluator.json").read_text())
    assert evaluator["kind"] == "classifier" and evaluator["kind_reason"].startswith("auto: 10 classes")
    check = json.loads((reproduced / "metrics" / "feature-check.json").read_text())
    assert check["modes"] == "classes" and check["num_modes"] == 10
    ladder = check["feature_spaces"]["domain-classifier"]["disturbances"]
    assert set(ladder) == {"gaussian-noise", "gaussian-blur", "salt-and-pepper", "mode-dropping"}
    assert all(len(entry["fid"]) == 5 and entry["fid"][0] >= 0 for entry in ladder.values())
    assert "### Feature-space check" in (reproduced / "reports" / "report.md").read_text()
    summary = json.loads((reproduced / "reports" / "metrics.json").read_text())
    assert summary["feature_check"]["domain-classifier"] == {name: e["monotone"] for name, e in ladder.items()}


def test_mlflow_has_one_run_per_cell_with_metrics(reproduced: Path) -> None:
    client = MlflowClient(f"sqlite:///{reproduced / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("genbench-digits")
    assert experiment is not None
    description = experiment.tags["mlflow.note.content"]  # the UI's experiment description: what the grid compares
    assert description.startswith("genbench grid: gan, vae, boom × seeds 0, ranked by mean FID in the "
                                  "domain-classifier feature space. Latest report: best ")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.stage = 'train'")
    assert sorted(r.info.run_name for r in runs) == ["boom-0", "gan-0", "vae-0"]
    (parent,) = client.search_runs([experiment.experiment_id], filter_string="tags.`genbench.role` = 'grid'")
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}  # one repro, one parent
    assert "reports/report.md" in [a.path for a in client.list_artifacts(parent.info.run_id, "reports")]
    assert parent.data.metrics["gan/fid_mean"] > 0 and parent.data.tags["champion"].startswith("genbench-digits-")
    meta = json.loads((reproduced / "data" / "prepared" / "meta.json").read_text())
    for run in runs:  # every cell records the prepared training split as its dataset (the UI's Dataset column)
        (used,) = run.inputs.dataset_inputs
        assert (used.dataset.name, used.dataset.digest) == ("digits-train", meta["fingerprint"][:16])
        assert [(t.key, t.value) for t in used.tags] == [("mlflow.data.context", "training")]
        profile = json.loads(used.dataset.profile)
        assert profile["images"] == meta["counts"]["train"] and profile["fingerprint"] == meta["fingerprint"]
        assert json.loads(used.dataset.source)["uri"] == str(reproduced / "data" / "prepared")
    for run in runs:
        if run.info.run_name == "boom-0":
            continue
        assert run.info.status == "FINISHED"
        assert {"fid", "isc_mean", "kid_mean"} <= set(run.data.metrics)
        assert run.data.params["variant"] == run.info.run_name.rsplit("-", 1)[0]  # <variant>-<seed>
        assert run.data.tags["git_commit"]


def test_second_repro_does_nothing_and_a_variant_edit_reruns_only_its_cells(reproduced: Path) -> None:
    again = dvc(reproduced, "repro")
    assert "Running stage" not in again.stdout
    params_path = reproduced / "params.yaml"
    original = params_path.read_text()
    raw = yaml.safe_load(original)
    raw["variants"]["vae"]["beta"] = 2.0
    params_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        status = json.loads(dvc(reproduced, "status", "--json").stdout)
    finally:
        params_path.write_text(original)
    # only the edited variant's cells (and downstream of them) are stale; the other variant is untouched
    assert "train@vae-0" in status
    assert set(status) <= {"train@vae-0", "evaluate@vae-0", "report"}


def test_prune_stage_ran_for_the_pruned_cells_only(reproduced: Path) -> None:
    study = json.loads((reproduced / "metrics" / "prune-gan-0.json").read_text())
    assert study["status"] == "ok" and [row["sparsity"] for row in study["rows"]] == [0.0, 0.5]
    assert json.loads((reproduced / "metrics" / "prune-boom-0.json").read_text())["rows"] == []  # diverged cell
    assert not (reproduced / "metrics" / "prune-vae-0.json").exists()  # not in prune.variants
    assert "Pruning: fewer parameters" in (reproduced / "reports" / "report.md").read_text()
