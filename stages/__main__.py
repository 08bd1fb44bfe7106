"""``python -m stages <command>``: the CLI of every DVC stage."""

from stages.app import app
from stages.common import exit_now

try:
    app(prog_name="python -m stages")
except SystemExit as done:
    exit_now(done.code)
