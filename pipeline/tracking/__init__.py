"""Everything MLflow: the store, one run per grid cell under a parent run per grid, buffered step metrics,
system metrics through an on-disk outbox, logged generators and the model registry's ``champion`` alias."""

from pipeline.tracking.grid import grid_key, grid_run_id
from pipeline.tracking.models import CHAMPION, log_generator, promote_champion
from pipeline.tracking.outbox import Outbox, find_outboxes
from pipeline.tracking.publish import publish_grid
from pipeline.tracking.runs import CellRun, NullRun, experiment_name, flatten, git_commit, warn_undelivered
from pipeline.tracking.sender import Sender, experiment_id
from pipeline.tracking.store import open_client, tracking_uri

__all__ = [
    "CHAMPION",
    "CellRun",
    "NullRun",
    "Outbox",
    "Sender",
    "experiment_id",
    "experiment_name",
    "find_outboxes",
    "flatten",
    "git_commit",
    "grid_key",
    "grid_run_id",
    "log_generator",
    "open_client",
    "promote_champion",
    "publish_grid",
    "tracking_uri",
    "warn_undelivered",
]
