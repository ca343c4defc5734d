"""Command-line interface (``visualsearch``)."""
