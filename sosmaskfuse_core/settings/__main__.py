"""`python -m sosmaskfuse_core.settings`: print config/sosmaskfuse.yaml, made from the settings."""

import sys

from .yaml_file import render

sys.stdout.write(render())
