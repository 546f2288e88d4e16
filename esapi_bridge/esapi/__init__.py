"""The ESAPI adapter: ``EsapiSession`` over the C# ``PlanBridge`` through pythonnet.

Importing this package loads no .NET runtime; :mod:`esapi_bridge.esapi.runtime` does, when asked.
"""

from esapi_bridge.esapi.error_map import WrongThread
from esapi_bridge.esapi.session import DEFAULT_DVH_BIN_GY, EsapiSession

__all__ = ["DEFAULT_DVH_BIN_GY", "EsapiSession", "WrongThread"]
