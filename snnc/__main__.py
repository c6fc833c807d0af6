from snnc.cli import run

run()
