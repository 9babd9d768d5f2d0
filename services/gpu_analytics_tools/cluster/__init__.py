"""Commands for a running cluster (real or simulated), through the argocd CLI."""
