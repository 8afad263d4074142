"""SOSMaskFuse infrared + visible image fusion: models, pipeline, training and metrics (no ROS)."""

__version__ = "0.1.0"
