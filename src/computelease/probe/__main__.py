"""`python -m computelease.probe [--quick | --full] ...`: the probe without the rest of the CLI, for a GPU
machine where only the probe matters (and before the command is registered)."""

from computelease.probe.cli import probe_app

if __name__ == "__main__":
    probe_app(prog_name="computelease probe")
