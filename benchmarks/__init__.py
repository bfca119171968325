"""Benchmarks of hashstatic against its peers and the physical limit (issue 6); see README.md."""
