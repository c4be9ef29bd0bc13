"""Networks: plain ``nn.Module``s (no Lightning). Heatmap nets return a list of per-stage outputs."""

from lightning_pose.models.backbones import TimmBackbone, create_backbone  # noqa: F401
from lightning_pose.models.cascade import DeepPoseCascade  # noqa: F401
from lightning_pose.models.cpm import ConvolutionalPoseMachine, gaussian_center_map  # noqa: F401
from lightning_pose.models.deeppose import DeepPoseRegressor  # noqa: F401
from lightning_pose.models.hourglass import Hourglass, PreActResidual, StackedHourglass  # noqa: F401
from lightning_pose.models.hybrid import HybridPoseNet  # noqa: F401
from lightning_pose.models.realnvp import RealNVP  # noqa: F401
from lightning_pose.models.simple_baseline import SimpleBaseline  # noqa: F401
