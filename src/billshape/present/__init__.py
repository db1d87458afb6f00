"""Presentation shared by the shells (CLI, app, reports): formatting of money, counts, shares and months
(:mod:`.format`), and how a field path is shown to a CLI user (:mod:`.labels`)."""
