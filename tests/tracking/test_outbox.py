"""The outbox and its sender against a real sqlite store: in-order delivery, safe re-delivery, rejected values."""

from __future__ import annotations

import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from pipeline.tracking import Outbox, Sender, find_outboxes, tracking_uri
from pipeline.tracking.outbox import JOURNAL, STATE
from pipeline.tracking.sender import coalesce


def _ops() -> list[dict]:
    now = time.time()
    metrics = [["loss", float(step) / 10, int(now * 1000) + step, step] for step in range(1, 51)]
    return [
        {"op": "create", "experiment": "outbox-test", "run_name": "cell", "tags": {"cell": "gan-0"},
         "params": {"train.steps": "50"}, "parent_key": None, "time": now},
        {"op": "input", "name": "digits-train", "digest": "0123456789abcdef", "source": "/data/prepared",
         "profile": {"images": 1000}, "context": "training"},
        {"op": "batch", "metrics": metrics[:30]},
        {"op": "batch", "metrics": metrics[30:], "tags": {"evaluated": "true"}},
        {"op": "status", "status": "FINISHED", "time": now + 1},
    ]


def _fill(outbox: Outbox) -> None:
    for op in _ops():
        outbox.append(op)


def test_delivers_in_order_and_redelivery_changes_nothing(workdir: Path) -> None:
    image = workdir / "final.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\nnot-really")
    outbox = Outbox.create(workdir / "runs/gan-0/mlflow", tracking_uri=tracking_uri())
    _fill(outbox)
    journal = (outbox.folder / JOURNAL).read_bytes()
    outbox.append({"op": "artifact", "file": outbox.add_file(image), "artifact_path": "samples"})
    assert outbox.count_pending() == 6

    sender = Sender(outbox)
    assert sender.acquire() and sender.deliver(timeout=30) == 0
    run_id = outbox.run_id
    assert run_id is not None and (outbox.folder / JOURNAL).read_bytes() == b""  # compacted once all was sent
    assert not any((outbox.folder / "files").iterdir())  # file copies dropped once uploaded

    # The store applied everything but the answers were lost: the same journal is delivered again from the start.
    (outbox.folder / JOURNAL).write_bytes(journal)
    outbox.state.update(delivered=0, run_id=None)
    outbox.append({"op": "artifact", "file": outbox.add_file(image), "artifact_path": "samples"})
    assert sender.deliver(timeout=30) == 0
    sender.release()

    client = MlflowClient(tracking_uri())
    experiment = client.get_experiment_by_name("outbox-test")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id] and outbox.run_id == run_id  # found again, not created twice
    history = client.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == list(range(1, 51))  # every step exactly once
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.params == {"train.steps": "50"}
    assert run.data.tags["evaluated"] == "true" and run.data.tags["genbench.outbox"] == outbox.id
    assert [a.path for a in client.list_artifacts(run_id, "samples")] == ["samples/final.png"]
    (used,) = run.inputs.dataset_inputs  # the dataset input, once
    assert (used.dataset.name, used.dataset.digest, used.dataset.profile) == ("digits-train", "0123456789abcdef",
                                                                              '{"images": 1000}')
    assert find_outboxes(workdir / "runs")[0].folder == outbox.folder


def test_a_rejected_operation_is_set_aside_and_the_rest_delivered(workdir: Path) -> None:
    outbox = Outbox.create(workdir / "ob", tracking_uri=tracking_uri())
    now = int(time.time() * 1000)
    outbox.append({"op": "create", "experiment": "outbox-test", "run_name": "cell", "tags": {},
                   "params": {"lr": "0.1"}, "parent_key": None, "time": time.time()})
    outbox.append({"op": "batch", "params": {"lr": "0.2"}})  # MLflow refuses to change a logged param
    outbox.append({"op": "batch", "metrics": [["loss", 1.0, now, 1]]})
    sender = Sender(outbox, notify=lambda message: None)
    assert sender.acquire() and sender.deliver(timeout=30) == 0
    sender.release()
    (failure,) = outbox.state["failed"]
    assert failure["op"]["params"] == {"lr": "0.2"} and "lr" in failure["error"]
    assert Outbox(outbox.folder).state["failed"] == outbox.state["failed"]  # persisted for `stages sync` to show
    assert [m.value for m in MlflowClient(tracking_uri()).get_metric_history(outbox.run_id, "loss")] == [1.0]


def test_only_one_sender_per_outbox(workdir: Path) -> None:
    outbox = Outbox.create(workdir / "ob", tracking_uri=tracking_uri())
    first, second = Sender(outbox), Sender(Outbox(outbox.folder))
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    assert (outbox.folder / STATE).exists()


def test_metric_batches_are_merged_and_a_bad_one_does_not_sink_its_neighbours(workdir: Path) -> None:
    now = int(time.time() * 1000)
    batches = [[["loss", 1.0, now, 1]], [["bad key?!", 2.0, now, 2]], [["loss", 3.0, now, 3]]]
    ops = [(i + 1, {"op": "batch", "metrics": b}) for i, b in enumerate(batches)] + [(9, {"op": "batch", "tags": {}})]
    groups = coalesce(ops)
    assert [(end, len(op.get("metrics", [])), len(members)) for end, op, members in groups] == [(3, 3, 3), (9, 0, 1)]

    outbox = Outbox.create(workdir / "ob", tracking_uri=tracking_uri())
    outbox.append({"op": "create", "experiment": "outbox-test", "run_name": "cell", "tags": {}, "params": {},
                   "parent_key": None, "time": time.time()})
    for batch in batches:
        outbox.append({"op": "batch", "metrics": batch})
    sender = Sender(outbox, notify=lambda message: None)
    assert sender.acquire() and sender.deliver(timeout=30) == 0
    sender.release()
    assert [f["op"]["metrics"][0][0] for f in outbox.state["failed"]] == ["bad key?!"]
    history = MlflowClient(tracking_uri()).get_metric_history(outbox.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (3, 3.0)]
