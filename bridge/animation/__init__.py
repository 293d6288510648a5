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
scene as it was. The names below are the package's public API (operators, panels
and tests import them from here).
"""

from __future__ import annotations

from ..errors import AnimationBridgeError, BridgeError, CancelledError
from .keyframes import (
    GROUP_ANGLES, GROUP_SHAPES, Channel, curve_values, ensure_action, ensure_fcurve, find_fcurves, key_arrays,
    mesh_key_names, property_path, scene_fps, set_keys, set_scene_timing, shape_key_path, write_channels,
)
from .live_link import (
    PROP_DECIMALS, PROP_FIRST_FRAME, PROP_TIMECODE_FPS, PROP_TIMECODE_START, TIMECODE_RATES, LiveLinkImportOptions,
    LiveLinkSummary, export_live_link_face, import_live_link_face,
)
from .video import (
    GROUP_EXPRESSION, GROUP_TRANSFORM, PROP_VIDEO, PROP_VIDEO_SKIPPED, animate_from_video, apply_maxine,
    apply_track, check_video_target, is_reconstruction, maxine_target, video_target,
)
from .video_job import (
    MaxineTarget, VideoFailed, VideoFinished, VideoJob, VideoMessage, VideoOptions, VideoProgress, run_video_sync,
)

__all__ = [
    "GROUP_ANGLES", "GROUP_EXPRESSION", "GROUP_SHAPES", "GROUP_TRANSFORM", "PROP_DECIMALS", "PROP_FIRST_FRAME",
    "PROP_TIMECODE_FPS", "PROP_TIMECODE_START", "PROP_VIDEO", "PROP_VIDEO_SKIPPED", "TIMECODE_RATES",
    "AnimationBridgeError", "BridgeError", "CancelledError",
    "Channel", "LiveLinkImportOptions", "LiveLinkSummary", "MaxineTarget", "VideoFailed", "VideoFinished",
    "VideoJob", "VideoMessage", "VideoOptions", "VideoProgress",
    "animate_from_video", "apply_maxine", "apply_track", "check_video_target", "curve_values", "ensure_action",
    "ensure_fcurve", "export_live_link_face", "find_fcurves", "import_live_link_face", "is_reconstruction",
    "key_arrays", "maxine_target", "mesh_key_names", "property_path", "run_video_sync", "scene_fps", "set_keys",
    "set_scene_timing", "shape_key_path", "video_target", "write_channels",
]
