"""Which vLLM releases modelfleet renders for, and how a release maps to its image.

Adding a release: `make vllm-table VERSION=x.y.z` writes its table to data/, then add it to
SUPPORTED_VERSIONS (README, "vLLM versions").
"""

from __future__ import annotations

import re

# The pinned current release: the default image tag and the table new LLMDeployments use.
# 0.33.0 is newer, but does not install from the registry this project builds from (it needs a
# newer certifi than is served), so its parser cannot be checked here.
DEFAULT_VERSION = "0.32.0"
# 0.11.0 stays: it was modelfleet's default until 0.32.0 (every LLMDeployment created before
# then has its image stored with this tag), and it is the last release before 0.12 removed
# --disable-log-requests and the deprecated metric names, so clusters that have not moved yet run it.
SUPPORTED_VERSIONS: tuple[str, ...] = ("0.32.0", "0.11.0")
IMAGE_REPOSITORY = "vllm/vllm-openai"
# An official image: optional registry prefix, a release tag, optionally pinned by digest.
# Written without backslashes so that the CRD's CEL rule can embed it as it is.
OFFICIAL_IMAGE_PATTERN = (
    "^(docker[.]io/)?(library/)?vllm/vllm-openai:v([0-9]+[.][0-9]+[.][0-9]+)(@sha256:[0-9a-f]{64})?$"
)
_OFFICIAL_IMAGE = re.compile(OFFICIAL_IMAGE_PATTERN)


def image_for(version: str) -> str:
    """The official image of a release, e.g. vllm/vllm-openai:v0.32.0."""
    return f"{IMAGE_REPOSITORY}:v{version}"


def version_of_image(image: str) -> str | None:
    """The release an official `vllm/vllm-openai:vX.Y.Z` image carries; None for any other image."""
    match = _OFFICIAL_IMAGE.match(image)
    return match.group(3) if match else None
