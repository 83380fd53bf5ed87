"""LocalStack's runtime as scripts/strict_s3.sh starts it, with two settings it has no variable for:
it listens on loopback only (it binds GATEWAY_LISTEN's port on every IPv4 interface otherwise), and
keeps objects in STRICT_S3_OBJECTS (otherwise /tmp/localstack-s3-storage, shared by every run).
"""
import os

from twisted.internet import endpoints

import localstack.services.s3.provider as s3_provider

_tcp4 = endpoints.TCP4ServerEndpoint


def _loopback(reactor, port, *args, **kwargs):
    kwargs.setdefault("interface", "127.0.0.1")
    return _tcp4(reactor, port, *args, **kwargs)


endpoints.TCP4ServerEndpoint = _loopback
s3_provider.DEFAULT_S3_TMP_DIR = os.environ["STRICT_S3_OBJECTS"]

from localstack.runtime.main import main  # noqa: E402  (after the settings above)

main()
