"""The GitOps checks of `make validate`: the tree built, validated and policy-checked offline
(validate.py), every chart rendered as Argo CD renders it (charts.py), and the Kubernetes JSON
schemas kubeconform reads (k8s_schemas.py)."""
