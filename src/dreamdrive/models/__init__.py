"""The networks: one self-contained file each, built from a dataclass config with size presets."""
