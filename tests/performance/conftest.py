"""Keep pytest out of the load-test tooling.

``run_load_test.py`` and ``run_fault_test.py`` match pytest's default
``*_test.py`` pattern, and importing ``locustfile.py`` would let gevent
monkey-patch the standard library under every other test. None holds tests:
``make load-test`` and ``make fault-test`` run them.
"""

collect_ignore = ["locustfile.py", "run_load_test.py", "run_fault_test.py"]
