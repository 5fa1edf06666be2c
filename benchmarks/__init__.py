"""Throughput benchmarks (``make bench`` → ``python -m benchmarks.run``); never part of the tests."""
