"""hms-stack models: backbones by name (models.backbones), MiT b0-b5, 1D waveform nets, heads.

config.py     ModelConfig: backbone, views, image layout, head
backbones.py  the backbone registry (`@register_backbone`); one file per family
build.py      ModelConfig -> backbone + head
"""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
