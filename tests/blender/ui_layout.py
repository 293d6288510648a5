# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for bpy.types.UILayout, shared by the panel and preferences tests: draw code
never runs headless otherwise. It records labels, drawn properties and operator buttons
(with the settings the draw code gives each), and checks that every drawn property exists."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def new_log() -> dict[str, list[Any]]:
    """What a draw records: "labels" (texts), "props" (property names), "operators"
    ((idname, settings) pairs) and "enabled" ((idname, whether its row is enabled) pairs)."""
    return {"labels": [], "props": [], "operators": [], "enabled": []}


class RecordingLayout:
    """Records into `log` (see `new_log`); rows, columns and boxes record into the same log."""

    def __init__(self, log: dict[str, list[Any]]) -> None:
        self.log = log

    def _child(self, *args: Any, **kwargs: Any) -> "RecordingLayout":
        return RecordingLayout(self.log)

    box = row = column = _child

    def label(self, text: str = "", **kwargs: Any) -> None:
        self.log["labels"].append(text)

    def separator(self, **kwargs: Any) -> None:
        pass

    def prop(self, data: Any, name: str, **kwargs: Any) -> None:
        assert hasattr(data, name), f"drawn property {name!r} does not exist on {data!r}"
        self.log["props"].append(name)

    def template_ID(self, data: Any, name: str, **kwargs: Any) -> None:
        self.prop(data, name)

    def operator(self, idname: str, **kwargs: Any) -> Any:
        settings = SimpleNamespace()
        self.log["operators"].append((idname, settings))
        self.log.setdefault("enabled", []).append((idname, bool(self.__dict__.get("enabled", True))))
        return settings

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)    # enabled, scale_y, ...


def draw_panel(panel: Any, context: Any) -> dict[str, list[Any]]:
    """What `panel.draw` records in `context`."""
    log = new_log()
    panel.draw(SimpleNamespace(layout=RecordingLayout(log)), context)
    return log
