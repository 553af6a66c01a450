"""Shared test configuration.

Fixtures for the embedded API server come from kubeasync's own pytest plugin
(``kubeasync.testing.pytest_plugin``), the same one users enable in their suites.
"""
