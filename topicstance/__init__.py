"""The topicstance model core: sections, actors, features, inference and the model bundle.

Training builds what this package loads, and the server serves it; so this package
imports neither grpc nor `service` nor `training`. The classes that get pickled live
here. `topicstance.v1` holds the generated protobuf stubs of the API.
"""
