"""The tooling of gpu-analytics: the local stack, the cluster simulation, the cluster verbs, the
observability build and verify, the GitOps checks. It is never installed in an image; the
product package (gpu_analytics) does not import it."""
