"""The inspector panel: a page, a JSON API and a live socket over the recent-sessions store.

``routes.register_panel`` serves it on an app; ``instrument_app`` calls it for apps in debug mode
or with ``panel_enabled``. This package marker imports nothing, so importing one of its modules
never loads the others.
"""
