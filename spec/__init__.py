"""raftwright reference spec: a pure, immutable model of Raft."""
