"""Benchmarks: `make bench` (full, minutes) and a tiny smoke run inside `make test`."""
