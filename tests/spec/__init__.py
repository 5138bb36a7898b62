"""Tests for the reference spec (spec/): one test per claim of the Raft paper it implements."""
