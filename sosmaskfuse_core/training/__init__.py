"""Training: the autoencoder and the SOS network, resumable runs, and release files made from them.

`autoencoder` and `sosnet` hold the two training loops; `runner` what they share (checkpoints
with metadata, NaN guard, AMP); `data` the image folders and crops; `losses` MS-SSIM and PSNR;
`release` turns a run into a shipped weights file.
"""

from .autoencoder import AutoencoderTrainConfig
from .autoencoder import train as train_autoencoder
from .release import export_weights
from .sosnet import SOSNetTrainConfig
from .sosnet import train as train_sosnet

__all__ = [
    "AutoencoderTrainConfig",
    "SOSNetTrainConfig",
    "export_weights",
    "train_autoencoder",
    "train_sosnet",
]
