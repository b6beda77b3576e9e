"""Clients of the topicstance service: the `topicstance` command and its gRPC calls."""
