"""raftwright properties: invariants and the engines that check them."""
