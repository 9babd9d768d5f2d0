"""GPU and LLM-token telemetry pipeline."""
