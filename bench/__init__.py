"""Benchmarks and long reliability runs for the twin (``python -m bench``); scripts, not timed tests."""
