# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Animation in Blender: tracked videos and Live Link Face takes as keyframes. May
import bpy, numpy, the bridge's shared modules, the reconstruction bridge, animation,
fitting and tddfa_v3; never the UI. One module per responsibility:

- `keyframes`: bulk keyframes on every Blender version we support (4.2's
  `Action.fcurves`, 4.4+ layered actions and slots) and the scene's timing;
- `live_link`: Live Link Face CSV takes onto and off meshes;
- `video_job`: tracking a video on a worker thread (no bpy);
- `video`: a tracked video onto a reconstruction or a Maxine model, and the video
  behind the camera;
- `boundary`: the core's errors as `AnimationBridgeError`.

Everything checks its inputs before changing anything: a bad take or a mesh without
ARKit/Maxine keys raises `AnimationBridgeError` (a `BridgeError`) and leaves the
scene as it was. The names below are the package's public API (what operators, panels
and tests read here); the rest is imported from its module.
"""

from __future__ import annotations

from ..errors import AnimationBridgeError, BridgeError
from .keyframes import Channel, find_fcurves, key_arrays, scene_fps, set_keys, shape_key_path, write_channels
from .live_link import LiveLinkImportOptions, export_live_link_face, import_live_link_face
from .video import animate_from_video, check_video_target, video_target
from .video_job import (
    MaxineTarget, VideoFailed, VideoFinished, VideoJob, VideoOptions, VideoProgress, run_video_sync,
)

__all__ = [
    "AnimationBridgeError", "BridgeError", "Channel", "LiveLinkImportOptions", "MaxineTarget", "VideoFailed",
    "VideoFinished", "VideoJob", "VideoOptions", "VideoProgress", "animate_from_video", "check_video_target",
    "export_live_link_face", "find_fcurves", "import_live_link_face", "key_arrays", "run_video_sync",
    "scene_fps", "set_keys", "shape_key_path", "video_target", "write_channels",
]
