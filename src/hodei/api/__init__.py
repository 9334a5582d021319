"""The gRPC protocol (package ``hodei.v1``): .proto sources, generated code and conversions.

Only this package imports the generated protobuf modules; the rest of Hodei sees domain
types. Regenerate with ``scripts/gen-proto`` after editing a ``.proto`` file.
"""
