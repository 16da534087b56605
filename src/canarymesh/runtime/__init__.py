"""SHELL: the runtimes that make a mesh real (processes, sockets, clocks). Not pure.

``runtime.local`` runs the mesh on one machine (Envoy, Prometheus, the xDS server, a CA);
``runtime.kube`` will drive the same ports over the Kubernetes API.
"""
