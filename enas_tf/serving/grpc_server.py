"""TF Serving's gRPC services on grpcio, with the official stubs.

PredictionService: Predict and GetModelMetadata (Classify, Regress and
MultiInference answer UNIMPLEMENTED, the stubs' default). ModelService:
GetModelStatus (HandleReloadConfigRequest: UNIMPLEMENTED). Requests over
``max_request_bytes`` are refused by grpcio itself with RESOURCE_EXHAUSTED.
"""

import concurrent.futures
import functools

import grpc
from absl import logging
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from enas_tf.serving import errors
from enas_tf.serving import responses
from enas_tf.serving import servable as servable_lib
from enas_tf.serving import tensor_proto


def start(repository, address, max_request_bytes, max_workers=16):
    """A started grpc.Server and the port it bound (``address`` may end in :0)."""
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", max_request_bytes),
                 ("grpc.max_send_message_length", -1)])
    servicer = Servicer(repository)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(address)
    if not port:
        raise OSError(f"gRPC could not bind {address}")
    server.start()
    return server, port


def _aborts_on_error(method):
    """Turns a ServingError into the call's status code and message."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except errors.ServingError as e:
            context.abort(e.code, e.message)
        except Exception as e:  # pylint: disable=broad-except
            logging.exception("gRPC %s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {e}")
        return None  # Not reached: abort raises.

    return wrapper


def _version(model_spec):
    if model_spec.version_label:
        raise errors.invalid(f"version labels are not configured (got "
                             f"{model_spec.version_label!r}); give a version number or none")
    return model_spec.version.value if model_spec.HasField("version") else None


class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer,
               model_service_pb2_grpc.ModelServiceServicer):
    """Predict, GetModelMetadata and GetModelStatus over a ModelRepository."""

    def __init__(self, repository):
        self._repository = repository

    @_aborts_on_error
    def Predict(self, request, context):  # pylint: disable=invalid-name
        spec = request.model_spec
        servable = self._repository.servable(spec.name, _version(spec))
        signature_name = spec.signature_name or servable_lib.DEFAULT_SIGNATURE
        # TF Serving answers an unknown signature in Predict with FAILED_PRECONDITION.
        signature = servable.signature(signature_name, grpc.StatusCode.FAILED_PRECONDITION)
        servable_lib.check_input_names(signature, request.inputs)
        inputs = {name: tensor_proto.to_array(name, proto, signature.inputs[name].dtype)
                  for name, proto in request.inputs.items()}
        outputs = servable.predict(signature_name, inputs, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for name, array in outputs.items():
            response.outputs[name].CopyFrom(tensor_proto.to_proto(array))
        return response

    @_aborts_on_error
    def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
        spec = request.model_spec
        return responses.model_metadata(self._repository, spec.name, _version(spec),
                                        list(request.metadata_field))

    @_aborts_on_error
    def GetModelStatus(self, request, context):  # pylint: disable=invalid-name
        spec = request.model_spec
        return responses.model_status(self._repository, spec.name, _version(spec))
