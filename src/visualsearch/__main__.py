"""``python -m visualsearch`` runs the CLI."""

from .cli.main import main

main()
