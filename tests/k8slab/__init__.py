"""The Kubernetes control-plane lab: build.sh builds the binaries, cluster.py starts them."""
