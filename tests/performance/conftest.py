"""Keep pytest out of the load-test tooling.

``run_load_test.py`` matches pytest's default ``*_test.py`` pattern, and
importing ``locustfile.py`` would let gevent monkey-patch the standard library
under every other test. Neither holds tests: ``make load-test`` runs them.
"""

collect_ignore = ["locustfile.py", "run_load_test.py"]
