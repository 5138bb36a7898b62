"""Generated protobuf and gRPC modules (see protos/generate.py). Do not edit."""
