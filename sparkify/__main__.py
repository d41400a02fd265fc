"""``python -m sparkify``: the same as the ``sparkify`` command."""

from sparkify.cli import app

app(prog_name="sparkify")
