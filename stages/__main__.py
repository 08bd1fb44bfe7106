"""``python -m stages <command>``: the CLI of every DVC stage."""

from stages.app import app

app(prog_name="python -m stages")
