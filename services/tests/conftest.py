from gpu_analytics.stack.fixtures import mongo_db, new_topic, stack

__all__ = ["mongo_db", "new_topic", "stack"]
