"""Typer commands, one per DVC stage: parse arguments, load params, call ``pipeline``, write outputs."""
