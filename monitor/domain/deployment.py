"""How a model version serves, when several are live at once."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Deployment(StrEnum):
    champion = "champion"  # in production: the version the others are compared with
    canary = "canary"  # a small share of the traffic, before a rollout
    ab = "ab"  # an arm of an A/B split of the traffic
    shadow = "shadow"  # scores the champion's requests too; its answers are not served
    retired = "retired"
    unspecified = "unspecified"  # registered without saying

    @property
    def is_challenger(self) -> bool:
        return self in (Deployment.canary, Deployment.ab, Deployment.shadow)


class DeploymentSpec(BaseModel):
    """Request body of ``PUT /v1/models/{name}/versions/{version}/deployment``."""

    model_config = ConfigDict(extra="forbid")
    mode: Deployment = Field(
        description="champion (making one retires the champion before it), canary, ab, shadow, retired or unspecified"
    )
