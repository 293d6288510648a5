# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The animation bridge's error boundary: the core's `AnimationError` and
`ReconstructionError`, and OSErrors, become `AnimationBridgeError` with the same
message (a cancel becomes `CancelledError`), so the UI catches only `BridgeError`.
Imports the core's error classes only; no bpy.
"""

from __future__ import annotations

import functools
from typing import Callable, NoReturn, ParamSpec, TypeVar

from ...animation.errors import AnimationError
from ...animation.errors import Cancelled as AnimationCancelled
from ...tddfa_v3.errors import Cancelled as ReconstructionCancelled
from ...tddfa_v3.errors import ReconstructionError
from ..errors import AnimationBridgeError, BridgeError, CancelledError

P = ParamSpec("P")
R = TypeVar("R")

#: The failures a user can act on that the core and the file system raise.
CORE_ERRORS: tuple[type[Exception], ...] = (AnimationError, ReconstructionError, OSError)


def raise_as_bridge_error(error: BaseException) -> NoReturn:
    """Raises `error` as the bridge error for it: itself when it already is one,
    `CancelledError` for a cancel, `AnimationBridgeError` for the core's errors and
    OSErrors (same message); anything else (a bug) as it is."""
    if isinstance(error, BridgeError):
        raise error
    if isinstance(error, (AnimationCancelled, ReconstructionCancelled)):
        raise CancelledError(str(error) or "cancelled") from error
    if isinstance(error, CORE_ERRORS):
        raise AnimationBridgeError(str(error)) from error
    raise error


def bridge_errors(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, raising the core's errors and OSErrors as `AnimationBridgeError`."""
    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except CORE_ERRORS as error:
            raise_as_bridge_error(error)
    return wrapper
