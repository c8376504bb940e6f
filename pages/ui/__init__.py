"""The page layer's shared pieces: settings, sidebar, job panels, maps, charts. None of these is a page.

Importing the package makes app.py's router the only one (see router.py): every page imports it first.
"""
from pages.ui.router import take_over_routing

take_over_routing()
