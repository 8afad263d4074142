"""Training the SOS network (HRNetV2) to segment salient objects in thermal images.

The paper's settings are the defaults (docs/algorithm.md, training): thermal image read as
3-channel BGR, normalised, resized to 640 x 480 and collapsed to one channel; the ground
truth read as 3 channels, / 255, resized bilinearly and averaged to one channel (a soft
target); BCE-with-logits; SGD lr 1e-3, momentum 0.9, weight decay 5e-4, batch 4, 200 epochs,
lr / 10 at epochs 100 and 150, seed 118; HRNetV2-W30, optionally initialised from an ImageNet
HRNetV2-W30 checkpoint. Not from the paper: random horizontal flips, the held-out validation and
the lighter networks for CPU training; several training folders with sampling weights, zoom
and aspect views, per-pixel loss weights and a soft-IoU term (`sampling`); training folders
pseudo-labelled from boxes, videos and single frames (`pseudo_labels`, `video_labels`,
`sources`). The command lines are `sosmaskfuse_core.commands.train_sosnet` and
`sosmaskfuse_core.commands.make_sos_data`.
"""

from .config import PRESETS, SOSNetTrainConfig, hrnet_config, resolve_architecture
from .data import (
    LAYOUTS,
    DataSet,
    MaskSample,
    PreparedSet,
    batch_indices,
    find_pairs,
    kfold_split,
    load_folder,
    make_batch,
    prepare,
    read_samples,
    split_data,
)
from .init import init_from_imagenet, initialise, read_init
from .loop import mask_quality, sos_loss, train

__all__ = [
    "LAYOUTS",
    "PRESETS",
    "DataSet",
    "MaskSample",
    "PreparedSet",
    "SOSNetTrainConfig",
    "batch_indices",
    "find_pairs",
    "hrnet_config",
    "init_from_imagenet",
    "initialise",
    "kfold_split",
    "load_folder",
    "make_batch",
    "mask_quality",
    "prepare",
    "read_init",
    "read_samples",
    "resolve_architecture",
    "sos_loss",
    "split_data",
    "train",
]
