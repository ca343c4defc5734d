"""Plain helpers shared by the tests and the benchmarks (no pytest fixtures here).

Import them as ``tests.support.<module>``: pytest puts the repository root on
``sys.path`` (``tests`` is a package), and benchmarks insert it themselves.
"""
