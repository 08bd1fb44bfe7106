"""Run the DVC pipeline's stages as Ray tasks across GPUs and machines, then record them with ``dvc commit``.

``plan`` reads what to run from DVC (no Ray); ``tasks`` is what a Ray worker executes (stdlib only);
``cluster`` connects, checks the cluster and schedules the plan.
"""
