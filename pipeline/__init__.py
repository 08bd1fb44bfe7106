"""Library of the generative-model benchmark: data, models, losses, training, evaluation, tracking, report.

Importable without side effects; the CLI lives in the sibling package ``stages``.
"""
