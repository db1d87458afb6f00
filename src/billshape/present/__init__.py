"""Presentation helpers shared by the shells: how a field path is shown to a CLI user (:mod:`.labels`)."""
