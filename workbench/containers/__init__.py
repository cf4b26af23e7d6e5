"""Worker images and containers: the image map, bootstrap without a registry, builds, sandboxed workers.

Recipes live in the repository's ``containers/`` directory, shipped in the wheel as
``workbench/_data/containers`` (``WORKBENCH_CONTAINERS`` points elsewhere); every Docker Engine
call goes through the docker SDK.
"""
