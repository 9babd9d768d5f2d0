"""A Kubernetes cluster on loopback for the GitOps tree: a real etcd, API server, controller
manager and scheduler, kwok nodes, what K3s ships built in, and a real Argo CD, all built
from their Go modules by `make setup`, in a network namespace of their own."""
