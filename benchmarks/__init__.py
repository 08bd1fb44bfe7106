"""``make bench``: our training loop against a bare PyTorch loop, evaluation time, peak memory, no-op ``dvc repro``."""
