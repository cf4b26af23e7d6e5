"""Foreign-architecture binaries on this host: qemu user emulation registered with binfmt_misc.

Debian's ``qemu-user-static`` registers one handler per architecture (``binfmt-support``); the
fix-binary flag (``F``) makes the kernel open the interpreter at registration, so it also runs
binaries inside chroots and containers, whose file systems do not carry it.
"""

from __future__ import annotations

from pathlib import Path

from workbench.containers.imagemap import host_arch, normalize_arch

BINFMT = Path("/proc/sys/fs/binfmt_misc")
#: Architecture -> the binfmt_misc handler qemu-user-static registers for it.
QEMU_HANDLERS = {"amd64": "qemu-x86_64", "arm64": "qemu-aarch64", "armv7": "qemu-arm"}


def emulation_problem(arch: str) -> str | None:
    """Why binaries of ``arch`` cannot run on this host (None: they can, natively or under qemu)."""
    arch = normalize_arch(arch)
    if arch == host_arch():
        return None
    handler = BINFMT / QEMU_HANDLERS[arch]
    if not (BINFMT / "status").exists():
        return f"binfmt_misc is not mounted (mount -t binfmt_misc binfmt_misc {BINFMT})"
    if not handler.exists():
        return f"no {handler.name} binfmt handler (apt-get install qemu-user-static binfmt-support)"
    lines = handler.read_text().splitlines()
    if not lines or lines[0].strip() != "enabled":
        return f"the {handler.name} binfmt handler is disabled (update-binfmts --enable {handler.name})"
    flags = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:")), "")
    if "F" not in flags:
        return (f"the {handler.name} binfmt handler lacks the fix-binary flag F, so chroots and containers "
                "cannot reach its interpreter (use Debian's qemu-user-static)")
    return None
