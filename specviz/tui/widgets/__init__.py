"""The widgets of the specviz screen, one idea per module."""
