from engines_for_tests import NotReadyEngine

ENGINE = NotReadyEngine
