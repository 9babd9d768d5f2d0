"""The processor: HTTP ingest and queries (FastAPI) plus the Kafka -> MongoDB consumer."""
