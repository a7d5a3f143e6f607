"""Kubernetes: the preflight pod manifests (render) for DaemonSet and Job mode."""
