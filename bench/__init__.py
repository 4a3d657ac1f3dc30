"""Benchmark of intelligence records: data generator, bulk loader, bare baseline app and the
load generator that compares them (`python -m bench.run`, `make bench`; see README.md)."""
