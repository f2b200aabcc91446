"""Pure builders: SpeechCluster spec -> Kubernetes manifests (dicts) and the CRD itself."""

from voxscale.render.common import Owner
from voxscale.render.configmap import render_configmap, render_model_config
from voxscale.render.deployment import render_deployment
from voxscale.render.pdb import render_pdb
from voxscale.render.service import render_service
from voxscale.render.shard import render_shard

__all__ = [
    "Owner",
    "render_configmap",
    "render_deployment",
    "render_model_config",
    "render_pdb",
    "render_service",
    "render_shard",
]
