# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender bridge: the only code that builds and reads bpy data.
May import bpy (mathutils, bpy_extras), numpy, Pillow (lazily), the format (`io_nv3dmm`), the core
(`tddfa_v3`, `fitting`, `animation`) and `installer`; never the UI (operators, panels, preferences).
Code that runs on a worker thread (`worker`, `reconstruction.job`, `animation.video_job`) never
touches bpy. Layout and arrows: docs/layout.md.

- `errors`: the one error root (`BridgeError`) the operators catch; `rollback`: undoing a failed build;
- `readiness`: the UI's input checks before a job (dependencies, assets folder, photo, video:
  `ReadinessError`) and its choices (backbone and device items from the core's tables);
- `worker`: `WorkerJob`, a job off the main thread (daemon thread, Future, progress queue);
- `mesh`: the shared bulk mesh builder and readers (import and reconstruction);
  `bpy_typed`: typed bpy access where the stubs cannot say enough;
- `naming` (the .nvf names in Blender), `axes` (coordinates, one home), `options`
  (import/export option dataclasses), `import_plan` (what an import creates, numpy),
  `original` (the file kept on an imported mesh), `mtl`, `files`: shared by import and export;
- `nvf_import` / `nvf_export`: .nvf files to and from mesh objects, the export one module
  per part (`export_state`, `export_shape`, `export_partitions`, `export_landmarks`,
  `export_surface`, `export_compare`);
- `reconstruction/`: 3DDFA-V3 on a worker thread (`job`), its result planned in numpy
  (`plan`), photos held by Blender (`photo`), the face object built (`build`);
- `animation/`: bulk keyframes (`keyframes`), Live Link Face takes (`live_link`),
  video tracking on a worker (`video_job`) and onto a face (`video`), the core's errors
  as `AnimationBridgeError` (`boundary`);
- `fitting`: a reconstruction + an .nvf model -> the person's own Maxine model object.
"""
