"""Synthetic gateway traffic with ground truth, for `stream-detector simulate`.

Modules: `text` (prompt pools and fills), `world` (accounts, networks, clients), `traffic`
(timing and the event builder), `benign` and `campaigns` (population behaviours), `scenarios`
(which populations, how many) and `writer` (time-ordered merge to JSON Lines plus truth).
"""
