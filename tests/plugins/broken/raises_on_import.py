"""A plugin whose import fails: reducer must name this file and keep the other datasets."""

raise RuntimeError("this plugin is broken on purpose")
