# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender bridge: the only code that builds and reads bpy data.

- `mesh`: the shared bulk mesh builder and readers (import and reconstruction);
- `nvf_mapping`: how an .nvf model maps onto Blender data (naming, coordinates);
- `nvf_import` / `nvf_export`: .nvf files to and from mesh objects;
- `reconstruction`: 3DDFA-V3 results to Blender objects.
"""
