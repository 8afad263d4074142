"""Training of the two networks: the IMV-F autoencoder and the SOS network (CLIs, losses, data)."""
