"""Optional dependencies, imported when a command needs them, with the extra that installs them.

ray = import_ray()      # or an InputError: pip install 'warroom[ray]'
"""

from __future__ import annotations

from types import ModuleType

from warroom.errors import InputError

RAY_HINT = "the ray executor needs ray: pip install 'warroom[ray]'"


def import_ray() -> ModuleType:
    """The ray module, or an InputError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise InputError(RAY_HINT) from exc
    return ray
