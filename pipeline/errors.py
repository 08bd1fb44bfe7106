"""Exceptions the stages map to exit codes (ARCHITECTURE: 2 = bad input, 1 = anything else)."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: params, data or arguments. Stages exit with code 2."""


class ConfigError(InputError):
    """``params.yaml`` is unreadable or invalid; the message lists every problem with its key path."""


class DataError(InputError):
    """A dataset source is missing or corrupt; the message names the file and what is wrong."""
