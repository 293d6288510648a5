# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the 3DDFA-V3 asset files come from: the one home of the dataset's addresses.

Standard library only (it imports nothing): the core's messages, the downloader
and the add-on's preferences all read these.
"""

from __future__ import annotations

#: The dataset's page (what a person opens; its assets/ folder holds the files).
ASSETS_DATASET_URL = "https://huggingface.co/datasets/Zidu-Wang/3DDFA-V3"
#: The dataset's assets/ folder for downloads; each file is this + its name.
ASSETS_BASE_URL = f"{ASSETS_DATASET_URL}/resolve/main/assets/"
#: Where to download the assets from, as messages say it.
ASSETS_HINT = f"{ASSETS_DATASET_URL} (folder assets/)"
