"""Training: the autoencoder (reconstruction) and the SOS network (segmentation), resumable, and release files.

`autoencoder` and `sosnet` hold the two training loops; `runner` what they share (checkpoints
with metadata, NaN guard, AMP); `data` the image folders and crops; `losses` MS-SSIM and PSNR;
`release` turns a run into a shipped weights file.
"""
