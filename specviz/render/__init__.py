"""Headless renderings shared by the commands and the UI: the console stream and summary, theory charts, provisioning progress."""
