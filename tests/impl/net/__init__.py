"""Loopback tests of the network side: protos, transport, node driver, client, CLI."""
