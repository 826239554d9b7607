from srpipe.cli import run

run()
