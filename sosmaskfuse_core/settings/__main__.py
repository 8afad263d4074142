"""`python -m sosmaskfuse_core.settings`: print config/sosmaskfuse.yaml, generated from the settings table."""

import sys

from .yaml_file import render

sys.stdout.write(render())
