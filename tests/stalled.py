"""A replica that says SERVING, takes ClassifyText calls and never answers them.

GetModelInfo answers at once with the model version `stalled`, so a test can see
that its channel reaches this replica before it sends the calls that will hang.

    python -m tests.stalled    # prints its port once it listens

What a replica looks like to a client between the moment it stops answering (killed,
or stuck) and the moment the kernel resets its connections: round robin keeps handing
it a share of the calls, and they wait there until the reset fails them all at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from topicstance.v1 import topicstance_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["TopicStanceService"].full_name


async def _never(_request: Any, _context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await asyncio.Event().wait()


async def _info(
    _request: Any, _context: grpc.aio.ServicerContext[Any, Any]
) -> pb.GetModelInfoResponse:
    return pb.GetModelInfoResponse(model_version="stalled")


async def main() -> None:
    server = grpc.aio.server()
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    never = grpc.unary_unary_rpc_method_handler(
        _never,
        request_deserializer=pb.ClassifyTextRequest.FromString,
        response_serializer=pb.ClassifyTextResponse.SerializeToString,
    )
    info = grpc.unary_unary_rpc_method_handler(
        _info,
        request_deserializer=pb.GetModelInfoRequest.FromString,
        response_serializer=pb.GetModelInfoResponse.SerializeToString,
    )
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "ClassifyText": never,
        "GetModelInfo": info,
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
