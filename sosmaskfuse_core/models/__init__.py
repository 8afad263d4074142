"""Models: IMV-F autoencoder, HRNetV2 SOS network, strict checkpoint loading, shipped weights.

Each architecture has its own module with its configuration dataclass and the table of how our
state-dict keys map to the authors' (`imvf_autoencoder`, `sos_hrnet`); `checkpoints` loads and
saves them; `shipped` knows where the default weights inside the package are.
"""

from .checkpoints import (
    CheckpointError,
    export_authors_layout,
    identify,
    load_autoencoder,
    load_sosnet,
    read_file,
    save_checkpoint,
)
from .imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder
from .shipped import SHIPPED_AUTOENCODER, SHIPPED_SOSNET, WEIGHTS_DIR
from .sos_hrnet import HRNetConfig, SOSNet

__all__ = [
    "SHIPPED_AUTOENCODER",
    "SHIPPED_SOSNET",
    "WEIGHTS_DIR",
    "AutoencoderConfig",
    "CheckpointError",
    "HRNetConfig",
    "IMVFAutoencoder",
    "SOSNet",
    "export_authors_layout",
    "identify",
    "load_autoencoder",
    "load_sosnet",
    "read_file",
    "save_checkpoint",
]
