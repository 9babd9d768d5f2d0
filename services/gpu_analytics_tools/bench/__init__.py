"""`make bench`: the performance benchmarks, each a ratio against a reference measured in the
same run (python -m gpu_analytics_tools.bench.run). Not part of `make test`."""
