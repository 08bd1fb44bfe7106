"""System metrics of a training run (CPU, memory, disk, network, and GPU when there is one) into its outbox.

MLflow's own ``SystemMetricsMonitor`` asks the store for the run's status at every sample and stops for good at
the first failure, so an outage would end system metrics for the rest of the run. This sampler uses the same
MLflow monitors but writes into the run's outbox, so the samples survive an outage like every other metric.
The step of a sample is the number of seconds since the run was first created (monotonic across resumes).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.system_metrics.metrics.base_metrics_monitor import BaseMetricsMonitor

PREFIX = "system/"


def monitors() -> list[BaseMetricsMonitor]:
    """CPU, disk and network monitors, plus the NVIDIA GPU monitor when ``pynvml`` finds a GPU."""
    from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
    from mlflow.system_metrics.metrics.disk_monitor import DiskMonitor
    from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor
    from mlflow.system_metrics.metrics.network_monitor import NetworkMonitor

    found: list[BaseMetricsMonitor] = [CPUMonitor(), DiskMonitor(), NetworkMonitor()]
    with contextlib.suppress(Exception):  # no nvidia-ml-py, no driver or no GPU: CPU-only metrics
        found.append(GPUMonitor())
    return found


class SystemSampler:
    """Samples every ``interval`` seconds and hands ``{system/<name>: value}`` and a step to ``record``."""

    def __init__(self, record: Callable[[dict[str, float], int], None], *, interval: float, origin: float) -> None:
        self.record = record
        self.interval = interval
        self.origin = origin
        self.monitors: list[BaseMetricsMonitor] | None = None  # built on the first sample, in the sampler's thread
        self._last_step: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="system-metrics", daemon=True)

    def start(self) -> SystemSampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        """Collect once from every monitor and record the values."""
        values: dict[str, float] = {}
        if self.monitors is None:
            self.monitors = monitors()
        for monitor in self.monitors:
            monitor.collect_metrics()
            values.update({f"{PREFIX}{k}": float(v) for k, v in monitor.aggregate_metrics().items()})
            monitor.clear_metrics()
        self._last_step = int(time.time() - self.origin)
        self.record(values, self._last_step)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a monitor failing once (e.g. a vanished disk) skips a sample
                self.sample()

    def stop(self) -> None:
        """Stop sampling after a last sample (so a run shorter than ``interval`` still has one), unless one was
        taken within the current second: steps are whole seconds and each is sampled once."""
        self._stop.set()
        self._thread.join()
        if self._last_step is None or int(time.time() - self.origin) > self._last_step:
            with contextlib.suppress(Exception):
                self.sample()
