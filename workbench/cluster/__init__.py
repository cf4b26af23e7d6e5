"""Multi-node clusters: a TOML cluster file, SSH probing, shard placement, a Dask cluster over SSH.

- ``inventory``: the cluster file (nodes, coordinator, known_hosts), validated on load.
- ``ssh``: asyncssh connections (verified host keys, key auth only) and bounded fan-out.
- ``probe``: ``workbench nodes``.  ``placement``: ``workbench place``.
- ``daskcluster``: ``workbench cluster up|status|down``.  ``locality``: which workers run a shard.
- ``testbed``: real nodes on one machine (network namespaces + sshd) for trying all of it.
"""
