"""Test support shared by services/tests and tests/: fakes at the boundaries that cannot exist
here (NVML without a GPU) and reads of the real stack."""
