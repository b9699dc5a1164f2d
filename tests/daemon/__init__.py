"""Tests for the daemon: configuration, database, services."""
