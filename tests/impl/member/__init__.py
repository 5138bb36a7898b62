"""Membership changes on real nodes over loopback (Raft thesis 4.1, 4.2)."""
