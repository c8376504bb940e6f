"""The page layer's shared pieces: settings, sidebar, job panels, maps, charts. None of these is a page.

Importing the package makes app.py's router the only one (see nav.py): every page imports it first.
"""
from pages.ui.nav import hand_over_to_app

hand_over_to_app()
