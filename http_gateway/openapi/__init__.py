"""/api/openapi.json: the OpenAPI 3.1 document of every route, maintained by hand.

A test compares the paths here with the app's router, so a route cannot be added without
being described. ProcessOptions' schema is generated from the pydantic model (one definition).

``common`` holds the small builders, ``schemas`` the component schemas, ``paths`` the path table,
``document`` the whole document and its route.
"""

from http_gateway.openapi.document import build_document, openapi_json, setup

__all__ = ["build_document", "openapi_json", "setup"]
