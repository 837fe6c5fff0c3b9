"""The face stand-in of engines_host_echo under its own name, "echo_face", beside the real face engine (the GIMP
host test picks it with the procedure's `engine` argument and reads its journal)."""
from engines_host_echo import EchoFaceEngine


class NamedEchoFaceEngine(EchoFaceEngine):
    name = "echo_face"


ENGINE = NamedEchoFaceEngine
