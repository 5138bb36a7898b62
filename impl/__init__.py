"""raftwright implementation: asyncio + grpc.aio Raft node."""
