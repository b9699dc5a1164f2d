"""Tests for the pure policy rules."""
