"""Benchmarks (`make bench`): cold start, per-request cost, memory and package size, with figures.

Figures, not timed tests: the run prints a table and writes `bench/RESULTS.md`; nothing here
fails because a number is high.
"""
