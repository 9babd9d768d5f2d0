"""The local backing services: an Apache Kafka broker and a MongoDB-wire server on 127.0.0.1.

Used by `gpu-analytics stack ...`, by `make dev` and by the test fixtures, so a laptop, CI and
every integration test run against the same real processes.
"""

from gpu_analytics_tools.stack.stack import LocalStack, StackError, StackPorts

__all__ = ["LocalStack", "StackError", "StackPorts"]
