"""The benchmark harness behind bench_report.py, one concern per module."""
