"""Presentation shared by the shells (CLI, app, reports): formatting of money, counts, shares and months."""
