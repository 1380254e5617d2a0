"""Benchmarks users can run (`python -m stream_detector.bench.<name> --help`); not tests."""
